// The copy family (Identity, Reshape, Flatten, Squeeze, Unsqueeze) and Transpose, plus the helpers the plain
// kernels of every family share (declared at the end of ops.h): type and quantization checks, PlainKernel,
// StridedCopy.
//
// The copy family keeps the logical row-major element order but not the physical layout: a rank-4 tensor is
// NHWC-strided, other ranks are dense. The optimized copy expresses both sides over one list of dims (a
// common refinement of the two shapes) so the whole op is one StridedCopy, a single memcpy when both sides
// are dense. Transpose is a oneDNN reorder reading the input through permuted strides.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "graph/ops.h"
#include "graph/quantization.h"
#include "kernels/dnnl_common.h"
#include "kernels/ops.h"

namespace octet::kernels {

// ---- Shared helpers ----

void require_types(const KernelContext& ctx, size_t inputs, const std::vector<DType>& allowed) {
  const TensorDesc& first = ctx.inputs.at(0);
  if (std::find(allowed.begin(), allowed.end(), first.dtype) == allowed.end()) {
    std::string names;
    for (DType d : allowed) names += std::string(names.empty() ? "" : ", ") + dtype_name(d);
    throw Error(node_label(ctx.node) + ": input 0 has dtype " + dtype_name(first.dtype) + ", supported: " + names);
  }
  auto check = [&](const TensorDesc& t, const std::string& what) {
    if (t.dtype != first.dtype || t.quant != first.quant)
      throw Error(node_label(ctx.node) + ": " + what + " (" + dtype_name(t.dtype) + ") differs from input 0 (" +
                  dtype_name(first.dtype) + ") in dtype or quantization; this kernel does not convert");
  };
  for (size_t i = 1; i < inputs; ++i) check(ctx.inputs.at(i), "input " + std::to_string(i));
  for (size_t i = 0; i < ctx.outputs.size(); ++i) check(ctx.outputs[i], "output " + std::to_string(i));
}

void require_activation(const KernelContext& ctx, size_t i) {
  if (ctx.constants.at(i))
    throw Error(node_label(ctx.node) + ": input " + std::to_string(i) + " '" + ctx.node.inputs[i] +
                "' is a constant; this kernel reads activations only (fold the node in the converter)");
}

std::string quant_params_str(const QuantParams& quant) {
  if (!quant.present()) return "no quantization parameters";
  std::ostringstream s;
  s << "scale";
  for (float scale : quant.scales) s << " " << scale;
  s << ", zero point";
  for (int32_t zero_point : quant.zero_points) s << " " << zero_point;
  if (quant.axis >= 0) s << ", axis " << quant.axis;
  return s.str();
}

PerTensorQuant require_per_tensor_params(const Node& node, const TensorDesc& desc, const std::string& what,
                                         const std::string& why) {
  const QuantParams& q = desc.quant;
  const std::string label = node_label(node) + ": " + what;
  if (!q.present())
    throw Error(label + " has dtype " + dtype_name(desc.dtype) + " but no quantization parameters (scale, zero point)");
  if (!q.per_tensor())
    throw Error(label + " quantization must be per tensor (one scale, one zero point)" + why + ", got " +
                quant_params_str(q));
  const PerTensorQuant params{q.scales[0], q.zero_points[0]};
  if (!(params.scale > 0) || !std::isfinite(params.scale)) {
    std::ostringstream scale;
    scale << params.scale;
    throw Error(label + " scale " + scale.str() + " must be finite and > 0");
  }
  const IntRange range = quantized_range(desc.dtype);
  if (params.zero_point < range.min || params.zero_point > range.max)
    throw Error(label + " zero point " + std::to_string(params.zero_point) + " is outside the " +
                dtype_name(desc.dtype) + " range [" + std::to_string(range.min) + ", " + std::to_string(range.max) +
                "]");
  return params;
}

std::vector<size_t> physical_order(const TensorDesc& t) {
  std::vector<size_t> order(t.dims.size());
  for (size_t d = 0; d < order.size(); ++d) order[d] = d;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return t.strides[a] > t.strides[b]; });
  return order;
}

void PlainKernel::bind(const std::vector<void*>& inputs, const std::vector<void*>& outputs, void* scratch) {
  inputs_.assign(inputs.begin(), inputs.end());
  for (size_t i = 0; i < inputs_.size() && i < constants_.size(); ++i)
    if (!inputs_[i] && constants_[i]) inputs_[i] = constants_[i]->bytes->data();
  outputs_ = outputs;
  scratch_ = scratch;
}

StridedCopy::StridedCopy(size_t elem_size, const Shape& dims, const Strides& src_strides, const Strides& dst_strides)
    : elem_size_(elem_size) {
  const int64_t elem = static_cast<int64_t>(elem_size);
  for (size_t d = 0; d < dims.size(); ++d) {
    if (dims[d] == 0) empty_ = true;
    if (dims[d] == 1) continue;  // offsets never move along it
    int64_t s = src_strides[d] * elem, t = dst_strides[d] * elem;
    // Merge into the previous (outer) dim when that one steps exactly over this one on both sides.
    if (!dims_.empty() && src_strides_.back() == s * dims[d] && dst_strides_.back() == t * dims[d]) {
      dims_.back() *= dims[d];
      src_strides_.back() = s;
      dst_strides_.back() = t;
    } else {
      dims_.push_back(dims[d]);
      src_strides_.push_back(s);
      dst_strides_.push_back(t);
    }
  }
}

namespace {
template <typename T>
void copy_elements(int64_t n, const char* src, int64_t src_stride, char* dst, int64_t dst_stride) {
  for (int64_t i = 0; i < n; ++i) std::memcpy(dst + i * dst_stride, src + i * src_stride, sizeof(T));
}
}  // namespace

void StridedCopy::copy_dim(size_t d, const char* src, char* dst) const {
  const int64_t n = dims_[d], ss = src_strides_[d], ds = dst_strides_[d], elem = static_cast<int64_t>(elem_size_);
  if (d + 1 < dims_.size()) {
    for (int64_t i = 0; i < n; ++i) copy_dim(d + 1, src + i * ss, dst + i * ds);
  } else if (ss == elem && ds == elem) {
    std::memcpy(dst, src, static_cast<size_t>(n * elem));
  } else if (elem == 4) {
    copy_elements<uint32_t>(n, src, ss, dst, ds);
  } else if (elem == 1) {
    copy_elements<uint8_t>(n, src, ss, dst, ds);
  } else {
    copy_elements<uint64_t>(n, src, ss, dst, ds);  // s64, the only other element size
  }
}

void StridedCopy::run(const void* src, void* dst) const {
  if (empty_) return;
  if (dims_.empty()) {
    std::memcpy(dst, src, elem_size_);
    return;
  }
  copy_dim(0, static_cast<const char*>(src), static_cast<char*>(dst));
}

void StridedCopyKernel::add(int input, int output, int64_t src_offset, int64_t dst_offset, StridedCopy copy) {
  int64_t elem = static_cast<int64_t>(copy.elem_size());
  pieces_.push_back({input, output, src_offset * elem, dst_offset * elem, std::move(copy)});
}

void StridedCopyKernel::run() {
  for (const Piece& p : pieces_) {
    const char* src = static_cast<const char*>(p.input == kScratch ? scratch() : this->input(p.input));
    char* dst = static_cast<char*>(p.output == kScratch ? scratch() : this->output(p.output));
    p.copy.run(src + p.src_offset, dst + p.dst_offset);
  }
}

namespace {

// ---- Copy family ----

struct DimStride {
  int64_t dim, stride;
};

std::vector<DimStride> non_unit_dims(const TensorDesc& t) {
  std::vector<DimStride> v;
  for (size_t d = 0; d < t.dims.size(); ++d)
    if (t.dims[d] != 1) v.push_back({t.dims[d], t.strides[d]});
  return v;
}

// Whether dims [lo, hi) are laid out as one dim (each steps exactly over the next).
bool mergeable(const std::vector<DimStride>& v, size_t lo, size_t hi) {
  for (size_t k = lo; k + 1 < hi; ++k)
    if (v[k].stride != v[k + 1].stride * v[k + 1].dim) return false;
  return true;
}

// Appends the dims [lo, hi) of `fine` with their strides, and the strides the coarse side (one merged dim of
// innermost stride `coarse_stride`) has at the same logical positions.
void split_group(const std::vector<DimStride>& fine, size_t lo, size_t hi, int64_t coarse_stride, Shape& dims,
                 Strides& fine_strides, Strides& coarse_strides) {
  for (size_t k = lo; k < hi; ++k) {
    int64_t inner = 1;
    for (size_t j = k + 1; j < hi; ++j) inner *= fine[j].dim;
    dims.push_back(fine[k].dim);
    fine_strides.push_back(fine[k].stride);
    coarse_strides.push_back(coarse_stride * inner);
  }
}

// Expresses a reshape from `a` to `b` over one list of dims with a stride for each side. Walks both shapes in
// row-major order by groups of equal element count; inside a group one side must be contiguous (or a single
// dim) so it can be split along the other side's dims. Returns false when neither side is, e.g. an NHWC
// [1,2,3,4] read as NHWC [1,3,2,4].
bool common_dims(const TensorDesc& a, const TensorDesc& b, Shape& dims, Strides& a_strides, Strides& b_strides) {
  if (a.elements() == 0) {
    dims = {0};
    a_strides = b_strides = {1};
    return true;
  }
  std::vector<DimStride> va = non_unit_dims(a), vb = non_unit_dims(b);
  size_t i = 0, j = 0;
  while (i < va.size()) {
    size_t i_end = i + 1, j_end = j + 1;
    int64_t pa = va[i].dim, pb = vb[j].dim;
    while (pa != pb) {
      if (pa < pb)
        pa *= va[i_end++].dim;
      else
        pb *= vb[j_end++].dim;
    }
    if (mergeable(va, i, i_end))
      split_group(vb, j, j_end, va[i_end - 1].stride, dims, b_strides, a_strides);
    else if (mergeable(vb, j, j_end))
      split_group(va, i, i_end, vb[j_end - 1].stride, dims, a_strides, b_strides);
    else
      return false;
    i = i_end;
    j = j_end;
  }
  return true;
}

// Odometer step over row-major logical indices.
void advance(std::vector<int64_t>& index, const Shape& dims) {
  for (size_t d = index.size(); d-- > 0;) {
    if (++index[d] < dims[d]) return;
    index[d] = 0;
  }
}

// Walks the input in row-major order and carries an output index alongside.
class ReferenceCopy : public PlainKernel {
 public:
  explicit ReferenceCopy(const KernelContext& ctx)
      : PlainKernel(ctx), in_(ctx.inputs[0]), out_(ctx.outputs[0]), out_index_(out_.dims.size()) {}

  void run() override {
    size_t elem = dtype_size(in_.dtype);
    const char* x = input<char>(0);
    char* y = output<char>(0);
    std::fill(out_index_.begin(), out_index_.end(), 0);
    for_each_index(in_, [&](const std::vector<int64_t>&, int64_t src_offset) {
      std::memcpy(y + offset_of(out_, out_index_) * elem, x + src_offset * elem, elem);
      advance(out_index_, out_.dims);
    });
  }

 private:
  TensorDesc in_, out_;
  std::vector<int64_t> out_index_;
};

// ---- Transpose ----

std::vector<int64_t> read_perm(const KernelContext& ctx) {
  std::vector<int64_t> perm = ctx.node.attrs.get_ints("perm");
  if (perm.empty())  // ONNX default: reverse the dims
    for (size_t d = ctx.inputs[0].dims.size(); d-- > 0;) perm.push_back(static_cast<int64_t>(d));
  return perm;
}

class DnnlTranspose : public DnnlKernel {
 public:
  explicit DnnlTranspose(const KernelContext& ctx) : DnnlKernel(ctx.engine) {
    // The input seen through permuted strides has the output's dims: the transpose is a reorder from it.
    TensorDesc permuted = ctx.outputs[0];
    permuted.dtype = ctx.inputs[0].dtype;
    std::vector<int64_t> perm = read_perm(ctx);
    for (size_t d = 0; d < perm.size(); ++d) permuted.strides[d] = ctx.inputs[0].strides[perm[d]];
    dnnl::memory::desc src_md = to_md(permuted), dst_md = to_md(ctx.outputs[0]);
    dnnl::reorder::primitive_desc pd(engine_->engine, src_md, engine_->engine, dst_md, base_attr());
    set_primitive(dnnl::reorder(pd), pd);
    map_input(0, DNNL_ARG_FROM, src_md);
    map_output(0, DNNL_ARG_TO, dst_md);
  }
};

class ReferenceTranspose : public PlainKernel {
 public:
  explicit ReferenceTranspose(const KernelContext& ctx)
      : PlainKernel(ctx), in_(ctx.inputs[0]), out_(ctx.outputs[0]), perm_(read_perm(ctx)), in_index_(perm_.size()) {}

  void run() override {
    size_t elem = dtype_size(in_.dtype);
    const char* x = input<char>(0);
    char* y = output<char>(0);
    for_each_index(out_, [&](const std::vector<int64_t>& idx, int64_t dst_offset) {
      for (size_t d = 0; d < perm_.size(); ++d) in_index_[perm_[d]] = idx[d];  // out[i...] = in[perm-ed i...]
      std::memcpy(y + dst_offset * elem, x + offset_of(in_, in_index_) * elem, elem);
    });
  }

 private:
  TensorDesc in_, out_;
  std::vector<int64_t> perm_, in_index_;
};

}  // namespace

std::unique_ptr<Kernel> make_copy(const KernelContext& ctx) {
  require_types(ctx, 1, kAnyDType);
  const TensorDesc &in = ctx.inputs[0], &out = ctx.outputs[0];
  size_t elem = dtype_size(in.dtype);
  Shape dims;
  Strides in_strides, out_strides;
  if (common_dims(in, out, dims, in_strides, out_strides)) {
    auto kernel = std::make_unique<StridedCopyKernel>(ctx);
    kernel->add(0, 0, 0, 0, StridedCopy(elem, dims, in_strides, out_strides));
    return kernel;
  }
  // No common dims: go through a dense copy in the scratch, whose row-major order both sides share.
  auto kernel = std::make_unique<StridedCopyKernel>(ctx, static_cast<size_t>(in.elements()) * elem);
  kernel->add(0, StridedCopyKernel::kScratch, 0, 0, StridedCopy(elem, in.dims, in.strides, dense_strides(in.dims)));
  kernel->add(StridedCopyKernel::kScratch, 0, 0, 0, StridedCopy(elem, out.dims, dense_strides(out.dims), out.strides));
  return kernel;
}

std::unique_ptr<Kernel> make_copy_reference(const KernelContext& ctx) {
  require_types(ctx, 1, kAnyDType);
  return std::make_unique<ReferenceCopy>(ctx);
}

std::unique_ptr<Kernel> make_transpose(const KernelContext& ctx) {
  require_types(ctx, 1, kDnnlDTypes);
  require_activation(ctx, 0);
  return std::make_unique<DnnlTranspose>(ctx);
}

std::unique_ptr<Kernel> make_transpose_reference(const KernelContext& ctx) {
  require_types(ctx, 1, kDnnlDTypes);
  return std::make_unique<ReferenceTranspose>(ctx);
}

}  // namespace octet::kernels
