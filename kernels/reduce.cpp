// ReduceMean(axes, keepdims): oneDNN (a reduction or an average pool, whichever has jit code for the
// pattern; see DnnlReduceMean) and a double-precision sum per output element (reference). Both see the
// output at the input's rank with the reduced dims of size 1 (the keepdims=1 shape) and the output's strides
// on the kept dims: keepdims only drops size-1 dims, which move nothing.
#include <algorithm>

#include "graph/ops.h"
#include "kernels/dnnl_common.h"
#include "kernels/ops.h"

namespace octet::kernels {
namespace {

// The output as a tensor of the input's rank (reduced dims of size 1, their stride irrelevant).
TensorDesc reduced_view(const KernelContext& ctx) {
  require_types(ctx, 1, {DType::f32});
  const TensorDesc &in = ctx.inputs[0], &out = ctx.outputs[0];
  int64_t rank = static_cast<int64_t>(in.dims.size());
  std::vector<int64_t> axes = ctx.node.attrs.get_ints("axes");
  std::vector<bool> reduced(in.dims.size(), axes.empty());  // no axes: reduce all
  for (int64_t a : axes) reduced[normalize_axis(ctx.node, a, rank)] = true;
  bool keepdims = ctx.node.attrs.get_int("keepdims", 1) != 0;
  TensorDesc view = out;
  view.dims.clear();
  view.strides.clear();
  for (size_t d = 0, next = 0; d < in.dims.size(); ++d) {
    view.dims.push_back(reduced[d] ? 1 : in.dims[d]);
    view.strides.push_back(keepdims ? out.strides[d] : reduced[d] ? 0 : out.strides[next++]);
  }
  return view;
}

// A run of dims adjacent in the input's physical order, all kept or all reduced, laid out as one dim.
struct DimGroup {
  int64_t dim, in_stride, out_stride;
  bool reduced;
};

// The mean in the input's physical dim order (outermost first), size-1 dims dropped and neighbours of one
// kind merged where contiguous on both sides. A mean over a set of axes does not depend on their order.
std::vector<DimGroup> physical_groups(const TensorDesc& in, const TensorDesc& view) {
  std::vector<DimGroup> groups;
  for (size_t d : physical_order(in)) {
    if (in.dims[d] == 1) continue;
    DimGroup g{in.dims[d], in.strides[d], view.strides[d], view.dims[d] == 1};
    DimGroup* outer = groups.empty() ? nullptr : &groups.back();
    if (outer && outer->reduced == g.reduced && outer->in_stride == g.in_stride * g.dim &&
        (g.reduced || outer->out_stride == g.out_stride * g.dim)) {
      outer->dim *= g.dim;
      outer->in_stride = g.in_stride;
      outer->out_stride = g.out_stride;
    } else {
      groups.push_back(g);
    }
  }
  return groups;
}

// oneDNN 2.6's reduction has jit code only for reduced dims innermost in memory; anything else runs its
// ref:any, orders of magnitude slower (see RESULTS.md, Design measurements). So the primitive sees the physical groups:
// [kept] reduced kept (a spatial mean of NHWC, a mean over tokens) is a 1-D average pool of layout nwc, whose jit
// handles it; other patterns are a reduction of the groups (jit when the reduced groups are innermost).
class DnnlReduceMean : public DnnlKernel {
 public:
  explicit DnnlReduceMean(const KernelContext& ctx) : DnnlKernel(ctx.engine) {
    using namespace dnnl;
    std::vector<DimGroup> g = physical_groups(ctx.inputs[0], reduced_view(ctx));
    size_t n = g.size();
    bool pool = !g.back().reduced && (n == 2 || (n == 3 && !g[0].reduced)) && g[n - 2].reduced;
    memory::desc src, dst;
    if (pool) {
      const DimGroup &r = g[n - 2], &c = g[n - 1];
      DimGroup batch = n == 3 ? g[0] : DimGroup{1, r.in_stride * r.dim, c.out_stride * c.dim, false};
      src =
          memory::desc({batch.dim, c.dim, r.dim}, memory::data_type::f32, {batch.in_stride, c.in_stride, r.in_stride});
      dst = memory::desc({batch.dim, c.dim, 1}, memory::data_type::f32,
                         {batch.out_stride, c.out_stride, c.out_stride * c.dim});
      pooling_v2_forward::desc desc(prop_kind::forward_inference, algorithm::pooling_avg_exclude_padding, src, dst, {1},
                                    {r.dim}, {0}, {0}, {0});
      pooling_v2_forward::primitive_desc pd(desc, base_attr(), engine_->engine);
      set_primitive(pooling_v2_forward(pd), pd);
    } else {
      memory::dims src_dims, src_strides, dst_dims, dst_strides(n);
      for (const DimGroup& group : g) {
        src_dims.push_back(group.dim);
        src_strides.push_back(group.in_stride);
        dst_dims.push_back(group.reduced ? 1 : group.dim);
      }
      int64_t inner = 1;  // a reduced group's stride (size 1: free) as if just outside the inner ones
      for (size_t k = n; k-- > 0;) {
        dst_strides[k] = g[k].reduced ? inner : g[k].out_stride;
        inner = dst_strides[k] * dst_dims[k];
      }
      src = memory::desc(src_dims, memory::data_type::f32, src_strides);
      dst = memory::desc(dst_dims, memory::data_type::f32, dst_strides);
      reduction::primitive_desc pd(reduction::desc(algorithm::reduction_mean, src, dst, 0.0f, 0.0f), base_attr(),
                                   engine_->engine);
      set_primitive(reduction(pd), pd);
    }
    map_input(0, DNNL_ARG_SRC, src);
    map_output(0, DNNL_ARG_DST, dst);
  }
};

class ReferenceReduceMean : public PlainKernel {
 public:
  explicit ReferenceReduceMean(const KernelContext& ctx)
      : PlainKernel(ctx), in_(ctx.inputs[0]), out_(reduced_view(ctx)), sums_(static_cast<size_t>(out_.elements())) {
    // Input index -> its output element's position in sums_: dense over the output, stride 0 when reduced.
    sum_index_ = dense_desc(DType::f32, out_.dims);
    for (size_t d = 0; d < out_.dims.size(); ++d)
      if (out_.dims[d] == 1) sum_index_.strides[d] = 0;
  }

  void run() override {
    const float* x = input<float>(0);
    float* y = output<float>(0);
    std::fill(sums_.begin(), sums_.end(), 0.0);
    for_each_index(
        in_, [&](const std::vector<int64_t>& idx, int64_t offset) { sums_[offset_of(sum_index_, idx)] += x[offset]; });
    double count = static_cast<double>(in_.elements() / std::max<int64_t>(1, out_.elements()));
    size_t n = 0;
    for_each_index(
        out_, [&](const std::vector<int64_t>&, int64_t offset) { y[offset] = static_cast<float>(sums_[n++] / count); });
  }

 private:
  TensorDesc in_, out_, sum_index_;
  std::vector<double> sums_;
};

}  // namespace

std::unique_ptr<Kernel> make_reduce(const KernelContext& ctx) {
  require_activation(ctx, 0);
  // Averaging over size-1 dims only is a copy, and oneDNN rejects a reduction that reduces nothing.
  if (ctx.inputs[0].elements() == ctx.outputs[0].elements()) return make_copy(ctx);
  return std::make_unique<DnnlReduceMean>(ctx);
}

std::unique_ptr<Kernel> make_reduce_reference(const KernelContext& ctx) {
  return std::make_unique<ReferenceReduceMean>(ctx);
}

}  // namespace octet::kernels
