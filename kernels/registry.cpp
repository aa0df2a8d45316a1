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
  kHeavy = 0,
  // Data movement or a single pass over memory: a small step runs on one thread (step_threads).
  kLightStep = 1,
  // Reads an input of any strides and offset at its usual speed (a strided copy or a oneDNN reorder), so
  // its input may be a zero-copy view with strides no other kernel was planned for (plan_views).
  kReadsAnyStrides = 2,
  // Reads or writes rank-4 feature maps channels-last (plan_activation_layouts).
  kChannelsLast = 4,
};

struct KernelFamily {
  const char* name;
  KernelFactory optimized;
  KernelFactory reference;
  unsigned traits;
};

#define FAMILY(family, traits) \
  { #family, make_##family, make_##family##_reference, traits }
const KernelFamily kKernelFamilies[] = {
    FAMILY(conv, kChannelsLast),
    FAMILY(gemm, kHeavy),
    FAMILY(matmul, kHeavy),
    FAMILY(batchnorm, kChannelsLast),
    FAMILY(eltwise, kHeavy),
    FAMILY(binary, kLightStep),
    FAMILY(pool, kChannelsLast),
    FAMILY(copy, kLightStep | kReadsAnyStrides),
    FAMILY(concat, kLightStep),
    FAMILY(softmax, kHeavy),  // an exp per element: it kept its two-thread speed-up
    FAMILY(pad, kLightStep),
    FAMILY(reduce, kHeavy),
    FAMILY(transpose, kLightStep | kReadsAnyStrides),
    FAMILY(slice, kLightStep | kReadsAnyStrides),
    FAMILY(gather, kLightStep),
    FAMILY(quantize, kLightStep),  // not any strides: on a strided source its binary is oneDNN's ref:any
    FAMILY(layer_norm, kLightStep),
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

int step_threads(const KernelContext& ctx, int session_threads) {
  if (session_threads <= 1) return session_threads;
  const KernelFamily* family = family_of(ctx.node.op);
  if (!family) return session_threads;
  // INT8 attention (a MatMul of two quantized activations, a Softmax writing u8) is a few microseconds of work
  // per step: a second thread did not make ViT's faster, and its synchronization made the whole run slower.
  // Their float forms keep the threads, which they use.
  const bool quantized_out = !ctx.outputs.empty() && ctx.outputs[0].dtype != DType::f32;
  const bool int8_attention = (ctx.node.op == "MatMul" && ctx.inputs.size() == 2 && !ctx.constants.at(1) &&
                               ctx.inputs[0].dtype != DType::f32) ||
                              (ctx.node.op == "Softmax" && quantized_out);
  if (int8_attention && !ctx.outputs.empty() && ctx.outputs[0].elements() <= kSmallStepElements) return 1;
  if (!(family->traits & kLightStep)) return session_threads;
  // An INT8 Add looks every element up in a 64 KB table (kernels/binary.cpp), which a second core halves: it is
  // not data movement.
  const DType out = ctx.outputs.empty() ? DType::f32 : ctx.outputs[0].dtype;
  if (std::strcmp(family->name, "binary") == 0 && (out == DType::u8 || out == DType::s8)) return session_threads;
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
