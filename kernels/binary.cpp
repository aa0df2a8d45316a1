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
//
// INT8 Add (both inputs and the output u8, or all s8, each per tensor) computes ONNX Runtime's QLinearAdd
// arithmetic (MLAS, x86), so that imported QOperator models give ONNX Runtime's integers. In float32:
//   ra = sa / sy,  rb = sb / sy,  fixed = zy - fma(ra, za, rb * zb)
//   y  = saturate(round_half_even(fma(a, ra, fma(b, rb, fixed))))
// (dequantize-add-quantize in float rounds about 1 output in 25,000 differently). The optimized kernel looks
// the results up in a table of all 256 x 256 input pairs made with that formula; the reference evaluates it
// per element and broadcasts.
#include <algorithm>
#include <cmath>

#include "graph/ops.h"
#include "graph/quantization.h"
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

bool is_int8(DType d) { return d == DType::u8 || d == DType::s8; }

struct IntegerAdd {
  float ra = 1, rb = 1, fixed = 0;
  IntRange range;
  DType dtype = DType::u8;
};

float scale_of(const KernelContext& ctx, const TensorDesc& t, const char* what, int32_t& zp) {
  if (t.dtype != ctx.outputs[0].dtype)
    throw Error(node_label(ctx.node) + ": INT8 Add needs " + what + " of the output's dtype (" +
                dtype_name(ctx.outputs[0].dtype) + "), got " + dtype_name(t.dtype));
  const PerTensorQuant q = require_per_tensor_params(ctx.node, t, what, " for an INT8 Add");
  zp = q.zero_point;
  return q.scale;
}

IntegerAdd read_integer_add(const KernelContext& ctx) {
  if (ctx.node.op != "Add") throw Error(node_label(ctx.node) + ": only Add runs on INT8 inputs");
  IntegerAdd a;
  int32_t za = 0, zb = 0, zy = 0;
  float sa = scale_of(ctx, ctx.inputs[0], "input 0", za), sb = scale_of(ctx, ctx.inputs[1], "input 1", zb);
  float sy = scale_of(ctx, ctx.outputs[0], "output 0", zy);
  a.ra = sa / sy;
  a.rb = sb / sy;
  a.fixed = static_cast<float>(zy) - std::fma(a.ra, static_cast<float>(za), a.rb * static_cast<float>(zb));
  a.dtype = ctx.outputs[0].dtype;
  a.range = quantized_range(a.dtype);
  return a;
}

template <typename T>
T saturate_round(float v, const IntRange& r) {
  float q = std::nearbyint(v);
  return static_cast<T>(std::min(std::max(q, static_cast<float>(r.min)), static_cast<float>(r.max)));
}

// Same shape and layout for the inputs and the output (optimized): the 256 x 256 results, computed at Prepare
// with the formula above, looked up per element (64 KB per node; the formula per element, with two fused
// multiply-adds and a rounding, ran 3-4x slower).
class DenseIntegerAdd : public PlainKernel {
 public:
  explicit DenseIntegerAdd(const KernelContext& ctx)
      : PlainKernel(ctx),
        add_(read_integer_add(ctx)),
        constants_{ctx.constants[0], ctx.constants[1]},
        count_(static_cast<int64_t>(ctx.outputs[0].bytes())),
        table_(256 * 256) {
    const int offset = add_.dtype == DType::u8 ? 0 : -128;  // table index = value - offset
    for (int a = 0; a < 256; ++a)
      for (int b = 0; b < 256; ++b) {
        float u = static_cast<float>(a + offset), v = static_cast<float>(b + offset);
        table_[static_cast<size_t>(a * 256 + b)] = static_cast<uint8_t>(
            saturate_round<int32_t>(std::fma(u, add_.ra, std::fma(v, add_.rb, add_.fixed)), add_.range));
      }
  }
  std::string implementation() const override { return "integer add, table"; }
  void run() override {
    const uint8_t* a = operand(0);
    const uint8_t* b = operand(1);
    uint8_t* y = output<uint8_t>(0);
    const uint8_t* t = table_.data();
    // s8 values index from -128: flipping the sign bit maps -128..127 to 0..255 in order.
    const uint8_t flip = add_.dtype == DType::u8 ? 0 : 0x80;
#pragma omp parallel for schedule(static) if (count_ >= kParallelElements)
    for (int64_t i = 0; i < count_; ++i) y[i] = t[(static_cast<size_t>(a[i] ^ flip) << 8) | (b[i] ^ flip)];
  }

 private:
  // Below this, waking a second thread costs about what it saves.
  static constexpr int64_t kParallelElements = int64_t(1) << 14;
  const uint8_t* operand(size_t i) const { return constants_[i] ? constants_[i]->data<uint8_t>() : input<uint8_t>(i); }
  IntegerAdd add_;
  const Constant* constants_[2];
  int64_t count_;
  std::vector<uint8_t> table_;
};

// Any broadcast and layout, std::fma per element (reference).
class ReferenceIntegerAdd : public PlainKernel {
 public:
  explicit ReferenceIntegerAdd(const KernelContext& ctx)
      : PlainKernel(ctx),
        add_(read_integer_add(ctx)),
        constants_{ctx.constants[0], ctx.constants[1]},
        out_(aligned(ctx.outputs[0], aligned_rank(ctx))) {
    for (size_t i = 0; i < 2; ++i) {
      operands_[i] = aligned(ctx.inputs[i], out_.dims.size());
      for (size_t d = 0; d < out_.dims.size(); ++d)
        if (operands_[i].dims[d] == 1) operands_[i].strides[d] = 0;
    }
  }
  void run() override {
    if (add_.dtype == DType::u8)
      loop(operand<uint8_t>(0), operand<uint8_t>(1), output<uint8_t>(0));
    else
      loop(operand<int8_t>(0), operand<int8_t>(1), output<int8_t>(0));
  }

 private:
  template <typename T>
  void loop(const T* a, const T* b, T* y) const {
    for_each_index(out_, [&](const std::vector<int64_t>& idx, int64_t offset) {
      float u = a[offset_of(operands_[0], idx)], v = b[offset_of(operands_[1], idx)];
      y[offset] = saturate_round<T>(std::fma(u, add_.ra, std::fma(v, add_.rb, add_.fixed)), add_.range);
    });
  }
  template <typename T>
  const T* operand(size_t i) const {
    return constants_[i] ? constants_[i]->data<T>() : input<T>(i);
  }
  IntegerAdd add_;
  const Constant* constants_[2];
  TensorDesc out_, operands_[2];
};

bool integer_inputs(const KernelContext& ctx) { return is_int8(ctx.inputs[0].dtype) || is_int8(ctx.inputs[1].dtype); }

void check(const KernelContext& ctx) {
  require_types(ctx, 2, {DType::f32});
  const std::string& op = ctx.node.op;
  if (op != "Add" && op != "Sub" && op != "Mul" && op != "Div")
    throw Error(node_label(ctx.node) + ": not Add, Sub, Mul or Div");
}

}  // namespace

// A float Add/Sub/Mul/Div is one pass over memory; an INT8 Add looks every element up in a 64 KB table, which a
// second core halves: it is not data movement.
Threading binary_threading(const KernelContext& ctx) {
  const DType out = ctx.outputs.empty() ? DType::f32 : ctx.outputs[0].dtype;
  return out == DType::u8 || out == DType::s8 ? Threading::all : Threading::one_when_little_data;
}

std::unique_ptr<Kernel> make_binary(const KernelContext& ctx) {
  if (integer_inputs(ctx)) {
    const TensorDesc &a = ctx.inputs[0], &b = ctx.inputs[1], &y = ctx.outputs[0];
    bool dense = a.dims == y.dims && b.dims == y.dims && a.strides == y.strides && b.strides == y.strides &&
                 y.bytes() == static_cast<size_t>(y.elements()) * dtype_size(y.dtype);
    if (dense) return std::make_unique<DenseIntegerAdd>(ctx);
    return std::make_unique<ReferenceIntegerAdd>(ctx);
  }
  check(ctx);
  bool broadcast0 = is_broadcast(ctx, 0), broadcast1 = is_broadcast(ctx, 1);
  if (broadcast0 && broadcast1) return make_binary_reference(ctx);
  if (broadcast0 && ctx.node.op == "Div") return make_binary_reference(ctx);
  return broadcast0 ? std::make_unique<DnnlBinary>(ctx, 1, 0) : std::make_unique<DnnlBinary>(ctx, 0, 1);
}

std::unique_ptr<Kernel> make_binary_reference(const KernelContext& ctx) {
  if (integer_inputs(ctx)) return std::make_unique<ReferenceIntegerAdd>(ctx);
  check(ctx);
  return std::make_unique<ReferenceBinary>(ctx);
}

}  // namespace octet::kernels
