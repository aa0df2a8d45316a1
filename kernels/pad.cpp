// Pad (constant | reflect | edge; negative pads crop). Each output coordinate of a dim reads one input
// coordinate of that dim, or the constant value: the optimized kernel tabulates that map per dim at Prepare
// and walks the output dim by dim; the reference evaluates it per element.
#include <algorithm>

#include "graph/ops.h"
#include "kernels/ops.h"

namespace octet::kernels {
namespace {

enum class PadMode { constant, reflect, edge };

struct PadSpec {
  PadMode mode = PadMode::constant;
  float value = 0;
  std::vector<int64_t> begin;  // pads at the start of each dim (the end ones are implied by the output dims)
};

PadSpec read_spec(const KernelContext& ctx) {
  require_types(ctx, 1, {DType::f32});
  const Node& node = ctx.node;
  const Shape &x = ctx.inputs[0].dims, &y = ctx.outputs[0].dims;
  PadSpec spec;
  std::string mode = node.attrs.get_string("mode", "constant");
  if (mode == "reflect")
    spec.mode = PadMode::reflect;
  else if (mode == "edge")
    spec.mode = PadMode::edge;
  else if (mode != "constant")
    throw Error(node_label(node) + ": attribute mode='" + mode + "' is not constant, reflect or edge");
  spec.value = node.attrs.get_float("value", 0.0f);
  std::vector<int64_t> pads = node.attrs.get_ints("pads");
  if (pads.size() != 2 * x.size())
    throw Error(node_label(node) + ": attribute pads has " + std::to_string(pads.size()) + " values for rank " +
                std::to_string(x.size()));
  spec.begin.assign(pads.begin(), pads.begin() + static_cast<long>(x.size()));
  for (size_t d = 0; d < x.size(); ++d)
    if (spec.mode != PadMode::constant && x[d] == 0 && y[d] > 0)
      throw Error(node_label(node) + ": attribute mode='" + mode + "' cannot pad the empty dimension " +
                  std::to_string(d));
  return spec;
}

// The input coordinate output coordinate `o` reads along a dim of `n` elements, or -1 for the constant.
int64_t source_coordinate(const PadSpec& spec, size_t dim, int64_t o, int64_t n) {
  int64_t i = o - spec.begin[dim];
  if (i >= 0 && i < n) return i;
  switch (spec.mode) {
    case PadMode::edge: return std::clamp<int64_t>(i, 0, n - 1);
    case PadMode::reflect: return i < 0 ? -i : 2 * (n - 1) - i;  // pads < n: one reflection suffices
    default: return -1;
  }
}

class PadKernel : public PlainKernel {
 public:
  explicit PadKernel(const KernelContext& ctx)
      : PlainKernel(ctx), spec_(read_spec(ctx)), in_(ctx.inputs[0]), out_(ctx.outputs[0]) {
    for (size_t d = 0; d < out_.dims.size(); ++d) {
      table_start_.push_back(sources_.size());
      for (int64_t o = 0; o < out_.dims[d]; ++o) sources_.push_back(source_coordinate(spec_, d, o, in_.dims[d]));
    }
  }

  void run() override { pad_dim(0, input<float>(0), output<float>(0)); }
  std::string implementation() const override { return "plain"; }

 private:
  void pad_dim(size_t d, const float* x, float* y) const {
    size_t rank = out_.dims.size();
    if (d == rank) {
      *y = *x;
      return;
    }
    const int64_t* source = sources_.data() + table_start_[d];
    int64_t n = out_.dims[d], xs = in_.strides[d], ys = out_.strides[d];
    for (int64_t o = 0; o < n; ++o) {
      if (d + 1 == rank)
        y[o * ys] = source[o] < 0 ? spec_.value : x[source[o] * xs];
      else if (source[o] < 0)
        fill(d + 1, y + o * ys);
      else
        pad_dim(d + 1, x + source[o] * xs, y + o * ys);
    }
  }

  void fill(size_t d, float* y) const {
    int64_t n = out_.dims[d], ys = out_.strides[d];
    for (int64_t o = 0; o < n; ++o) {
      if (d + 1 == out_.dims.size())
        y[o * ys] = spec_.value;
      else
        fill(d + 1, y + o * ys);
    }
  }

  PadSpec spec_;
  TensorDesc in_, out_;
  std::vector<int64_t> sources_;     // per dim, per output coordinate: the input coordinate or -1
  std::vector<size_t> table_start_;  // where each dim's entries begin in sources_
};

class ReferencePad : public PlainKernel {
 public:
  explicit ReferencePad(const KernelContext& ctx)
      : PlainKernel(ctx), spec_(read_spec(ctx)), in_(ctx.inputs[0]), out_(ctx.outputs[0]) {}

  void run() override {
    const float* x = input<float>(0);
    float* y = output<float>(0);
    for_each_index(out_, [&](const std::vector<int64_t>& idx, int64_t offset) {
      int64_t src = 0;
      for (size_t d = 0; d < idx.size(); ++d) {
        int64_t i = source_coordinate(spec_, d, idx[d], in_.dims[d]);
        if (i < 0) {
          y[offset] = spec_.value;
          return;
        }
        src += i * in_.strides[d];
      }
      y[offset] = x[src];
    });
  }

 private:
  PadSpec spec_;
  TensorDesc in_, out_;
};

}  // namespace

std::unique_ptr<Kernel> make_pad(const KernelContext& ctx) { return std::make_unique<PadKernel>(ctx); }
std::unique_ptr<Kernel> make_pad_reference(const KernelContext& ctx) { return std::make_unique<ReferencePad>(ctx); }

}  // namespace octet::kernels
