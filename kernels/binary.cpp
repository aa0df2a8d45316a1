// Add, Sub, Mul, Div with numpy broadcasting: oneDNN binary (optimized) and a loop over output indices
// (reference).
//
// oneDNN broadcasts src1 only and wants equal ranks: shapes are aligned to the output's rank with leading
// 1s, and when only input 0 is broadcast the operands swap (Add and Mul commute; a swapped Sub negates its
// result with an eltwise post-op; a Div with input 0 broadcast runs the reference loop). When both are broadcast
// (e.g. [N,1] + [1,M]) the reference loop is the implementation. oneDNN's jit binary wants src0 and dst in
// one format and recognises a broadcast src1 only in that format too, so operands are described in the
// output's physical dim order: a constant operand (bias, scale) is reordered into it at Prepare, an
// activation gets the matching strides on its size-1 dims (which never move, so any stride is right).
#include <algorithm>

#include "graph/ops.h"
#include "kernels/dnnl_common.h"
#include "kernels/ops.h"

namespace octet::kernels {
namespace {

// `t` with leading size-1 dims up to `rank` (numpy alignment); their stride is the span of `t`, as if outer.
TensorDesc aligned(const TensorDesc& t, size_t rank) {
  TensorDesc a = t;
  size_t extra = rank - t.dims.size();
  int64_t span = static_cast<int64_t>(t.bytes() / dtype_size(t.dtype));
  a.dims.insert(a.dims.begin(), extra, 1);
  a.strides.insert(a.strides.begin(), extra, span);
  return a;
}

// `t` laid out in dim order `order`: all strides rewritten when `relayout`, else only those of size-1 dims.
TensorDesc in_order(const TensorDesc& t, const std::vector<size_t>& order, bool relayout) {
  TensorDesc r = t;
  int64_t inner = 1;  // the stride a dim placed here would have
  for (size_t k = order.size(); k-- > 0;) {
    size_t d = order[k];
    if (relayout || t.dims[d] == 1) r.strides[d] = inner;
    inner = r.strides[d] * std::max<int64_t>(1, t.dims[d]);
  }
  return r;
}

// oneDNN has no rank 0: a scalar output is computed as [1].
size_t aligned_rank(const KernelContext& ctx) { return std::max<size_t>(1, ctx.outputs[0].dims.size()); }

bool is_broadcast(const KernelContext& ctx, size_t i) {
  return aligned(ctx.inputs[i], aligned_rank(ctx)).dims != aligned(ctx.outputs[0], aligned_rank(ctx)).dims;
}

class DnnlBinary : public DnnlKernel {
 public:
  // Input `full` has the output's shape and is src0; input `other` (maybe broadcast) is src1.
  DnnlBinary(const KernelContext& ctx, size_t full, size_t other) : DnnlKernel(ctx.engine) {
    using namespace dnnl;
    size_t rank = aligned_rank(ctx);
    TensorDesc out = aligned(ctx.outputs[0], rank);
    std::vector<size_t> order = physical_order(out);
    memory::desc dst = to_md(in_order(out, order, false));
    memory::desc src0 = bind_operand(ctx, full, DNNL_ARG_SRC_0, rank, order);
    memory::desc src1 = bind_operand(ctx, other, DNNL_ARG_SRC_1, rank, order);
    const std::string& op = ctx.node.op;
    algorithm alg = op == "Add"   ? algorithm::binary_add
                    : op == "Sub" ? algorithm::binary_sub
                    : op == "Mul" ? algorithm::binary_mul
                                  : algorithm::binary_div;
    primitive_attr attr = base_attr();
    if (op == "Sub" && full == 1) {  // computed as input 1 - input 0
      post_ops ops;
      ops.append_eltwise(1.0f, algorithm::eltwise_linear, -1.0f, 0.0f);
      attr.set_post_ops(ops);
    }
    binary::primitive_desc pd(binary::desc(alg, src0, src1, dst), attr, engine_->engine);
    set_primitive(binary(pd), pd);
    map_output(0, DNNL_ARG_DST, dst);
  }

 private:
  // Input i as argument `arg`: its descriptor in the output's dim order (see the top of the file).
  dnnl::memory::desc bind_operand(const KernelContext& ctx, size_t i, int arg, size_t rank,
                                  const std::vector<size_t>& order) {
    TensorDesc t = aligned(ctx.inputs[i], rank);
    const Constant* constant = ctx.constants[i];
    dnnl::memory::desc md = to_md(in_order(t, order, constant != nullptr));
    if (constant)
      set_owned(arg, reorder_constant(*engine_, to_md(t), constant->bytes->data(), md));
    else
      map_input(i, arg, md);
    return md;
  }
};

class ReferenceBinary : public PlainKernel {
 public:
  explicit ReferenceBinary(const KernelContext& ctx)
      : PlainKernel(ctx), op_(ctx.node.op[0]), out_(aligned(ctx.outputs[0], aligned_rank(ctx))) {
    // Each input seen over the output's indices: a broadcast dim does not move (stride 0).
    for (size_t i = 0; i < 2; ++i) {
      operands_[i] = aligned(ctx.inputs[i], out_.dims.size());
      for (size_t d = 0; d < out_.dims.size(); ++d)
        if (operands_[i].dims[d] == 1) operands_[i].strides[d] = 0;
    }
  }

  void run() override {
    const float *a = input<float>(0), *b = input<float>(1);
    float* y = output<float>(0);
    for_each_index(out_, [&](const std::vector<int64_t>& idx, int64_t offset) {
      float u = a[offset_of(operands_[0], idx)], v = b[offset_of(operands_[1], idx)];
      y[offset] = op_ == 'A' ? u + v : op_ == 'S' ? u - v : op_ == 'M' ? u * v : u / v;
    });
  }

 private:
  char op_;  // first letter of Add, Sub, Mul, Div
  TensorDesc out_, operands_[2];
};

void check(const KernelContext& ctx) {
  require_types(ctx, 2, {DType::f32});
  const std::string& op = ctx.node.op;
  if (op != "Add" && op != "Sub" && op != "Mul" && op != "Div")
    throw Error(node_label(ctx.node) + ": not Add, Sub, Mul or Div");
}

}  // namespace

std::unique_ptr<Kernel> make_binary(const KernelContext& ctx) {
  check(ctx);
  bool broadcast0 = is_broadcast(ctx, 0), broadcast1 = is_broadcast(ctx, 1);
  if (broadcast0 && broadcast1) return make_binary_reference(ctx);
  if (broadcast0 && ctx.node.op == "Div") return make_binary_reference(ctx);
  return broadcast0 ? std::make_unique<DnnlBinary>(ctx, 1, 0) : std::make_unique<DnnlBinary>(ctx, 0, 1);
}

std::unique_ptr<Kernel> make_binary_reference(const KernelContext& ctx) {
  check(ctx);
  return std::make_unique<ReferenceBinary>(ctx);
}

}  // namespace octet::kernels
