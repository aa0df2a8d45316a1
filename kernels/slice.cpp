// Slice (starts/ends/axes/steps, negative steps, ONNX clamping) and Split: every output is a window of the
// input, element i reading input element start + i * step along each dim. The optimized kernel is one
// StridedCopy per output from the input seen through the window's offset and strides (negative for
// reversed slices); the reference computes each element's source index.
#include <algorithm>
#include <cstring>

#include "graph/ops.h"
#include "kernels/ops.h"

namespace octet::kernels {
namespace {}  // namespace

std::vector<SliceWindow> slice_windows(const Node& node, const Shape& x, const std::vector<Shape>& outputs) {
  int64_t rank = static_cast<int64_t>(x.size());
  SliceWindow whole{std::vector<int64_t>(x.size(), 0), std::vector<int64_t>(x.size(), 1)};
  std::vector<SliceWindow> windows;
  if (node.op == "Split") {
    size_t axis = static_cast<size_t>(normalize_axis(node, node.attrs.get_int("axis", 0), rank));
    for (const Shape& out : outputs) {
      windows.push_back(whole);
      whole.start[axis] += out.at(axis);
    }
    return windows;
  }
  std::vector<int64_t> starts = node.attrs.get_ints("starts"), axes = node.attrs.get_ints("axes"),
                       steps = node.attrs.get_ints("steps", std::vector<int64_t>(starts.size(), 1));
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (axes.size() != starts.size() || steps.size() != starts.size())
    throw Error(node_label(node) + ": attributes starts, axes and steps differ in length");
  std::vector<bool> seen(x.size(), false);
  for (size_t i = 0; i < starts.size(); ++i) {
    size_t axis = static_cast<size_t>(normalize_axis(node, axes[i], rank));
    if (seen[axis]) throw Error(node_label(node) + ": attribute axes repeats axis " + std::to_string(axis));
    seen[axis] = true;
    if (steps[i] == 0) throw Error(node_label(node) + ": attribute steps has a 0");
    int64_t dim = x[axis], s = starts[i] < 0 ? starts[i] + dim : starts[i];
    // A negative step starts at most at the last element; a positive one at most one past it.
    s = std::max<int64_t>(0, std::min(s, steps[i] > 0 ? dim : dim - 1));
    whole.start[axis] = s;
    whole.step[axis] = steps[i];
  }
  windows.push_back(whole);
  return windows;
}

namespace {

// One window per output. Output dims come from shape inference; only the starts need ONNX's clamping here.
std::vector<SliceWindow> read_windows(const KernelContext& ctx) {
  require_types(ctx, 1, kAnyDType);
  std::vector<Shape> outputs;
  for (const TensorDesc& out : ctx.outputs) outputs.push_back(out.dims);
  return slice_windows(ctx.node, ctx.inputs[0].dims, outputs);
}

class ReferenceSlice : public PlainKernel {
 public:
  explicit ReferenceSlice(const KernelContext& ctx)
      : PlainKernel(ctx), windows_(read_windows(ctx)), in_(ctx.inputs[0]), outs_(ctx.outputs) {}

  void run() override {
    size_t elem = dtype_size(in_.dtype);
    const char* x = input<char>(0);
    for (size_t o = 0; o < outs_.size(); ++o) {
      const SliceWindow& w = windows_[o];
      char* y = output<char>(o);
      for_each_index(outs_[o], [&](const std::vector<int64_t>& idx, int64_t offset) {
        int64_t src = 0;
        for (size_t d = 0; d < idx.size(); ++d) src += (w.start[d] + idx[d] * w.step[d]) * in_.strides[d];
        std::memcpy(y + offset * elem, x + src * elem, elem);
      });
    }
  }

 private:
  std::vector<SliceWindow> windows_;
  TensorDesc in_;
  std::vector<TensorDesc> outs_;
};

}  // namespace

std::unique_ptr<Kernel> make_slice(const KernelContext& ctx) {
  const TensorDesc& in = ctx.inputs[0];
  std::vector<SliceWindow> windows = read_windows(ctx);
  auto kernel = std::make_unique<StridedCopyKernel>(ctx);
  for (size_t o = 0; o < windows.size(); ++o) {
    int64_t offset = 0;
    Strides strides(in.dims.size());
    for (size_t d = 0; d < in.dims.size(); ++d) {
      offset += windows[o].start[d] * in.strides[d];
      strides[d] = windows[o].step[d] * in.strides[d];
    }
    const TensorDesc& out = ctx.outputs[o];
    kernel->add(0, static_cast<int>(o), offset, 0, StridedCopy(dtype_size(in.dtype), out.dims, strides, out.strides));
  }
  return kernel;
}

std::unique_ptr<Kernel> make_slice_reference(const KernelContext& ctx) { return std::make_unique<ReferenceSlice>(ctx); }

}  // namespace octet::kernels
