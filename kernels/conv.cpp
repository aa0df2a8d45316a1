// Conv: oneDNN convolution (optimized) and a direct loop (reference), both with the fused post-ops
// the converter attaches: act (relu | clip | leaky_relu) on the conv result, an optional residual sum
// (input 3), then sum_act. Weights and bias are constants, reordered once into the layout oneDNN picks
// (format_tag::any: an explicit weights tag sends int8 convs to the 1000x slower ref_int8).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "graph/ops.h"
#include "kernels/dnnl_common.h"
#include "kernels/ops.h"

namespace octet::kernels {
namespace {

struct Activation {
  std::string kind;  // "", "relu", "clip", "leaky_relu"
  float alpha = 0, beta = 0;

  float apply(float x) const {
    if (kind == "relu") return std::max(x, 0.0f);
    if (kind == "clip") return std::min(std::max(x, alpha), beta);
    if (kind == "leaky_relu") return x < 0 ? x * alpha : x;
    return x;
  }
  void append_to(dnnl::post_ops& ops) const {
    if (kind == "relu") ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    else if (kind == "clip") ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip_v2, alpha, beta);
    else if (kind == "leaky_relu") ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, alpha, 0.0f);
  }
};

Activation read_activation(const Node& node, const std::string& prefix) {
  Activation a;
  a.kind = node.attrs.get_string(prefix, "");
  a.alpha = node.attrs.get_float(prefix + "_alpha", a.kind == "clip" ? -INFINITY : 0.0f);
  a.beta = node.attrs.get_float(prefix + "_beta", INFINITY);
  if (!a.kind.empty() && a.kind != "relu" && a.kind != "clip" && a.kind != "leaky_relu")
    throw Error(node_label(node) + ": attribute " + prefix + "='" + a.kind + "' is not relu, clip or leaky_relu");
  return a;
}

// What both implementations need to know about one Conv node.
struct ConvSpec {
  WindowGeometry geometry;
  int64_t group = 1;
  bool has_bias = false, has_sum = false;
  Activation act, sum_act;
};

ConvSpec read_spec(const KernelContext& ctx) {
  const Node& node = ctx.node;
  const TensorDesc& w = ctx.inputs[1];
  if (!ctx.constants[1]) throw Error(node_label(node) + ": weights (input 1) must be a constant");
  if (ctx.inputs[0].dtype != DType::f32 || w.dtype != DType::f32 || ctx.outputs[0].dtype != DType::f32)
    throw Error(node_label(node) + ": only f32 convolutions are supported");
  ConvSpec spec;
  spec.geometry = window_geometry(node, ctx.inputs[0].dims, Shape(w.dims.begin() + 2, w.dims.end()));
  spec.group = node.attrs.get_int("group", 1);
  spec.has_bias = node.inputs.size() > 2 && !node.inputs[2].empty();
  if (spec.has_bias && !ctx.constants[2]) throw Error(node_label(node) + ": bias (input 2) must be a constant");
  spec.has_sum = node.inputs.size() > 3 && !node.inputs[3].empty();
  spec.act = read_activation(node, "act");
  spec.sum_act = read_activation(node, "sum_act");
  return spec;
}

class DnnlConv : public DnnlKernel {
 public:
  explicit DnnlConv(const KernelContext& ctx) : DnnlKernel(ctx.engine), spec_(read_spec(ctx)) {
    using namespace dnnl;
    const TensorDesc& wd = ctx.inputs[1];
    const WindowGeometry& g = spec_.geometry;
    memory::dims weight_dims = to_dims(wd.dims);
    if (spec_.group > 1) {  // oneDNN's grouped weights: [G, OC/G, IC/G, spatial...]
      weight_dims[0] /= spec_.group;
      weight_dims.insert(weight_dims.begin(), spec_.group);
    }
    memory::desc src_md = to_md(ctx.inputs[0]);
    memory::desc dst_md = to_md(ctx.outputs[0]);
    memory::desc weights_any(weight_dims, memory::data_type::f32, memory::format_tag::any);
    memory::desc bias_md({wd.dims[0]}, memory::data_type::f32, memory::format_tag::x);
    memory::dims strides(g.strides.begin(), g.strides.end()), dilations, pad_l(g.pads_begin.begin(), g.pads_begin.end()),
        pad_r(g.pads_end.begin(), g.pads_end.end());
    for (int64_t d : g.dilations) dilations.push_back(d - 1);  // oneDNN counts the gaps

    primitive_attr attr = base_attr();
    post_ops ops;
    spec_.act.append_to(ops);
    if (spec_.has_sum) ops.append_sum(1.0f);
    spec_.sum_act.append_to(ops);
    attr.set_post_ops(ops);

    convolution_forward::desc desc =
        spec_.has_bias ? convolution_forward::desc(prop_kind::forward_inference, algorithm::convolution_direct, src_md,
                                                   weights_any, bias_md, dst_md, strides, dilations, pad_l, pad_r)
                       : convolution_forward::desc(prop_kind::forward_inference, algorithm::convolution_direct, src_md,
                                                   weights_any, dst_md, strides, dilations, pad_l, pad_r);
    convolution_forward::primitive_desc pd(desc, attr, engine_->engine);
    set_primitive(convolution_forward(pd), pd);

    memory::desc weights_plain(weight_dims, memory::data_type::f32, dense_strides(Shape(weight_dims.begin(), weight_dims.end())));
    set_owned(DNNL_ARG_WEIGHTS, reorder_constant(*engine_, weights_plain, ctx.constants[1]->bytes->data(), pd.weights_desc()));
    if (spec_.has_bias)
      set_owned(DNNL_ARG_BIAS, reorder_constant(*engine_, bias_md, ctx.constants[2]->bytes->data(), bias_md));
    map_input(0, DNNL_ARG_SRC, src_md);
    map_output(0, DNNL_ARG_DST, dst_md);
    sum_bytes_ = ctx.outputs[0].bytes();
  }

  int inplace_input() const override { return spec_.has_sum ? 3 : -1; }

  void bind(const std::vector<void*>& inputs, const std::vector<void*>& outputs, void* scratch) override {
    DnnlKernel::bind(inputs, outputs, scratch);
    // The sum post-op accumulates into dst: when the planner could not give the residual's buffer to the
    // output, run() first copies the residual there.
    sum_source_ = spec_.has_sum && inputs[3] != outputs[0] ? inputs[3] : nullptr;
    dst_ = outputs[0];
  }

  void run() override {
    if (sum_source_) std::memcpy(dst_, sum_source_, sum_bytes_);
    DnnlKernel::run();
  }

 private:
  ConvSpec spec_;
  size_t sum_bytes_ = 0;
  const void* sum_source_ = nullptr;
  void* dst_ = nullptr;
};

class ReferenceConv : public Kernel {
 public:
  explicit ReferenceConv(const KernelContext& ctx)
      : spec_(read_spec(ctx)), src_(ctx.inputs[0]), dst_(ctx.outputs[0]), weights_(ctx.constants[1]) {
    if (spec_.has_bias) bias_ = ctx.constants[2];
    if (spec_.has_sum) sum_desc_ = ctx.inputs[3];
  }
  int inplace_input() const override { return spec_.has_sum ? 3 : -1; }
  void bind(const std::vector<void*>& inputs, const std::vector<void*>& outputs, void*) override {
    x_ = static_cast<const float*>(inputs[0]);
    sum_ = spec_.has_sum ? static_cast<const float*>(inputs[3]) : nullptr;
    y_ = static_cast<float*>(outputs[0]);
  }

  void run() override {
    const Shape& wd = weights_->shape;
    const float* w = weights_->data<float>();
    const WindowGeometry& g = spec_.geometry;
    size_t spatial = g.kernel.size();
    int64_t oc_per_group = wd[0] / spec_.group, ic_per_group = wd[1];
    int64_t kernel_size = 1;
    for (int64_t k : g.kernel) kernel_size *= k;
    std::vector<int64_t> in_idx(src_.dims.size());
    // Each output element: sum over its group's input channels and the kernel window.
    for_each_index(dst_, [&](const std::vector<int64_t>& out, int64_t out_offset) {
      int64_t n = out[0], oc = out[1], grp = oc / oc_per_group;
      double acc = bias_ ? bias_->data<float>()[oc] : 0.0;
      for (int64_t ic = 0; ic < ic_per_group; ++ic) {
        for (int64_t k = 0; k < kernel_size; ++k) {
          int64_t rest = k, w_offset = (oc * ic_per_group + ic) * kernel_size + k;
          bool inside = true;
          for (size_t s = spatial; s-- > 0;) {
            int64_t ks = rest % g.kernel[s];
            rest /= g.kernel[s];
            int64_t pos = out[2 + s] * g.strides[s] - g.pads_begin[s] + ks * g.dilations[s];
            if (pos < 0 || pos >= src_.dims[2 + s]) inside = false;
            in_idx[2 + s] = pos;
          }
          if (!inside) continue;
          in_idx[0] = n;
          in_idx[1] = grp * ic_per_group + ic;
          acc += static_cast<double>(x_[offset_of(src_, in_idx)]) * w[w_offset];
        }
      }
      float v = spec_.act.apply(static_cast<float>(acc));
      if (sum_) v = spec_.sum_act.apply(v + sum_[offset_of(sum_desc_, out)]);
      y_[out_offset] = v;
    });
  }

 private:
  ConvSpec spec_;
  TensorDesc src_, dst_, sum_desc_;
  const Constant* weights_;
  const Constant* bias_ = nullptr;
  const float* x_ = nullptr;
  const float* sum_ = nullptr;
  float* y_ = nullptr;
};

}  // namespace

std::unique_ptr<Kernel> make_conv(const KernelContext& ctx) {
  // Two oneDNN 2.6 jit bugs, found by tests/test_kernels_conv.cpp: a pad as large as the kernel window (a
  // window wholly in the padding) crashes brgconv, and act + sum + sum_act loses the final eltwise.
  // Real classifiers have neither (the converter fuses a sum only into a conv without act), so such
  // nodes run the reference loop rather than risk a wrong answer.
  ConvSpec spec = read_spec(ctx);
  if (!spec.act.kind.empty() && spec.has_sum && !spec.sum_act.kind.empty()) return make_conv_reference(ctx);
  for (size_t i = 0; i < spec.geometry.kernel.size(); ++i) {
    int64_t extent = (spec.geometry.kernel[i] - 1) * spec.geometry.dilations[i] + 1;
    if (spec.geometry.pads_begin[i] >= extent || spec.geometry.pads_end[i] >= extent) return make_conv_reference(ctx);
  }
  return std::make_unique<DnnlConv>(ctx);
}
std::unique_ptr<Kernel> make_conv_reference(const KernelContext& ctx) { return std::make_unique<ReferenceConv>(ctx); }

}  // namespace octet::kernels
