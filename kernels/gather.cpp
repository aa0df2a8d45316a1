// Gather(axis) with constant indices (s64 or s32, negative counted from the end), validated at Prepare:
// output[outer..., j..., inner...] = data[outer..., indices[j...], inner...]. The optimized kernel is one
// StridedCopy per index, of the data with the axis removed; the reference computes each element's source.
// Elements are moved, not converted, so every dtype works.
#include <cstring>

#include "graph/ops.h"
#include "kernels/ops.h"

namespace octet::kernels {
namespace {

struct GatherSpec {
  size_t axis;
  std::vector<int64_t> indices;  // normalized to [0, dim), row-major over the indices' shape
  Shape indices_shape;
};

GatherSpec read_spec(const KernelContext& ctx) {
  require_types(ctx, 1, kAnyDType);
  const Node& node = ctx.node;
  const TensorDesc& data = ctx.inputs[0];
  GatherSpec spec;
  spec.axis =
      static_cast<size_t>(normalize_axis(node, node.attrs.get_int("axis", 0), static_cast<int64_t>(data.dims.size())));
  const Constant* indices = ctx.constants[1];
  if (!indices) throw Error(node_label(node) + ": input 1 (indices) must be a constant");
  if (indices->dtype != DType::s64 && indices->dtype != DType::s32)
    throw Error(node_label(node) + ": input 1 (indices) has dtype " + dtype_name(indices->dtype) +
                ", expected s64 or s32");
  spec.indices = indices->as_ints();
  spec.indices_shape = indices->shape;
  int64_t dim = data.dims[spec.axis];
  for (size_t j = 0; j < spec.indices.size(); ++j) {
    int64_t& i = spec.indices[j];
    if (i < -dim || i >= dim)
      throw Error(node_label(node) + ": indices[" + std::to_string(j) + "] = " + std::to_string(i) +
                  " is out of range for axis " + std::to_string(spec.axis) + " of size " + std::to_string(dim));
    if (i < 0) i += dim;
  }
  return spec;
}

class ReferenceGather : public PlainKernel {
 public:
  explicit ReferenceGather(const KernelContext& ctx)
      : PlainKernel(ctx),
        spec_(read_spec(ctx)),
        in_(ctx.inputs[0]),
        out_(ctx.outputs[0]),
        indices_(dense_desc(DType::s64, spec_.indices_shape)) {}

  void run() override {
    size_t elem = dtype_size(in_.dtype), axis = spec_.axis, q = spec_.indices_shape.size();
    const char* x = input<char>(0);
    char* y = output<char>(0);
    for_each_index(out_, [&](const std::vector<int64_t>& idx, int64_t offset) {
      int64_t j = 0, src = 0;  // j: flat position in the indices
      for (size_t k = 0; k < q; ++k) j += idx[axis + k] * indices_.strides[k];
      for (size_t d = 0; d < in_.dims.size(); ++d) {
        int64_t i = d < axis ? idx[d] : d == axis ? spec_.indices[static_cast<size_t>(j)] : idx[d + q - 1];
        src += i * in_.strides[d];
      }
      std::memcpy(y + offset * elem, x + src * elem, elem);
    });
  }

 private:
  GatherSpec spec_;
  TensorDesc in_, out_, indices_;
};

}  // namespace

std::unique_ptr<Kernel> make_gather(const KernelContext& ctx) {
  GatherSpec spec = read_spec(ctx);
  const TensorDesc &in = ctx.inputs[0], &out = ctx.outputs[0];
  size_t axis = spec.axis, q = spec.indices_shape.size();
  // The data without its axis, and the output without the indices' dims, have the same dims.
  Shape dims;
  Strides src_strides, dst_strides;
  for (size_t d = 0; d < in.dims.size(); ++d) {
    if (d == axis) continue;
    dims.push_back(in.dims[d]);
    src_strides.push_back(in.strides[d]);
    dst_strides.push_back(out.strides[d < axis ? d : d + q - 1]);
  }
  StridedCopy copy(dtype_size(in.dtype), dims, src_strides, dst_strides);
  TensorDesc positions = out;  // the output's indices dims: where each gathered slice goes
  positions.dims.assign(spec.indices_shape.begin(), spec.indices_shape.end());
  positions.strides.assign(out.strides.begin() + static_cast<long>(axis),
                           out.strides.begin() + static_cast<long>(axis + q));
  auto kernel = std::make_unique<StridedCopyKernel>(ctx);
  size_t j = 0;
  for_each_index(positions, [&](const std::vector<int64_t>&, int64_t dst_offset) {
    kernel->add(0, 0, spec.indices[j++] * in.strides[axis], dst_offset, copy);
  });
  return kernel;
}

std::unique_ptr<Kernel> make_gather_reference(const KernelContext& ctx) {
  return std::make_unique<ReferenceGather>(ctx);
}

}  // namespace octet::kernels
