// LayerNormalization(axis, epsilon): y = (x - mean) / sqrt(var + epsilon) * scale + bias over the dims
// [axis, rank), and when the node has them the optional outputs Mean and InvStdDev = 1 / sqrt(var + epsilon)
// (shape of x with the normalized dims 1). oneDNN layer_normalization_forward (optimized) sees a dense input as
// [outer, normalized], in forward_training mode when the statistics are wanted (it then writes the mean and the
// variance; InvStdDev is computed from the variance after it); other layouts (a rank-4 NHWC tensor) run the
// reference. Reference: a double-precision pass per line. Scale and bias are constants (the converter folds
// anything else), copied into oneDNN's scale/shift at Prepare. Output 0 may be u8/s8 (QuantizingLayerNorm).
#include <algorithm>
#include <cmath>
#include <optional>

#include "graph/ops.h"
#include "kernels/dnnl_common.h"
#include "kernels/ops.h"

namespace octet::kernels {
namespace {

struct LayerNormSpec {
  size_t axis = 0;
  int64_t inner = 1;  // elements per normalized line
  float epsilon = 1e-5f;
  std::vector<float> scale, bias;
};

LayerNormSpec read_spec(const KernelContext& ctx) {
  require_types(ctx, 1, {DType::f32});
  require_activation(ctx, 0);
  const Node& node = ctx.node;
  LayerNormSpec s;
  int64_t rank = static_cast<int64_t>(ctx.inputs[0].dims.size());
  s.axis = static_cast<size_t>(normalize_axis(node, node.attrs.get_int("axis", -1), rank));
  for (size_t d = s.axis; d < ctx.inputs[0].dims.size(); ++d) s.inner *= ctx.inputs[0].dims[d];
  s.epsilon = node.attrs.get_float("epsilon", 1e-5f);
  for (size_t i = 1; i < 3; ++i) {
    if (i >= node.inputs.size() || node.inputs[i].empty()) continue;
    const Constant* c = ctx.constants[i];
    if (!c || c->dtype != DType::f32)
      throw Error(node_label(node) + ": input " + std::to_string(i) + (i == 1 ? " 'Scale'" : " 'B'") +
                  " must be an f32 constant");
    std::vector<float> values = c->as_floats();
    if (static_cast<int64_t>(values.size()) == 1) values.assign(static_cast<size_t>(s.inner), values[0]);
    if (static_cast<int64_t>(values.size()) != s.inner)
      throw Error(node_label(node) + ": input " + std::to_string(i) + " has " + std::to_string(values.size()) +
                  " values for " + std::to_string(s.inner) + " normalized elements");
    (i == 1 ? s.scale : s.bias) = std::move(values);
  }
  if (s.scale.empty()) s.scale.assign(static_cast<size_t>(s.inner), 1.0f);
  if (s.bias.empty()) s.bias.assign(static_cast<size_t>(s.inner), 0.0f);
  return s;
}

// `t` as a dense [outer, inner] matrix, or nullopt when it is not dense row-major (oneDNN 2.6's layer
// normalization misreads strided outer dims; a gapped or NHWC layout runs the reference).
std::optional<dnnl::memory::desc> lines_md(const TensorDesc& t, int64_t inner) {
  int64_t expected = 1;
  for (size_t d = t.dims.size(); d-- > 0;) {
    if (t.dims[d] != 1 && t.strides[d] != expected) return std::nullopt;
    expected *= t.dims[d];
  }
  return dnnl::memory::desc({t.elements() / std::max<int64_t>(inner, 1), inner}, to_dnnl(t.dtype),
                            dnnl::memory::format_tag::ab);
}

bool has_output(const KernelContext& ctx, size_t i) {
  return ctx.node.outputs.size() > i && !ctx.node.outputs[i].empty();
}

class DnnlLayerNorm : public DnnlKernel {
 public:
  DnnlLayerNorm(const KernelContext& ctx, const LayerNormSpec& s, const dnnl::memory::desc& md)
      : DnnlKernel(ctx.engine), epsilon_(s.epsilon), statistics_(has_output(ctx, 1) || has_output(ctx, 2)) {
    using namespace dnnl;
    auto flags = normalization_flags::use_scale | normalization_flags::use_shift;
    layer_normalization_forward::desc desc(statistics_ ? prop_kind::forward_training : prop_kind::forward_inference, md,
                                           s.epsilon, flags);
    layer_normalization_forward::primitive_desc pd(desc, base_attr(), engine_->engine);
    set_primitive(layer_normalization_forward(pd), pd);
    memory::desc vec({s.inner}, memory::data_type::f32, memory::format_tag::a);
    set_owned(DNNL_ARG_SCALE, reorder_constant(*engine_, vec, s.scale.data(), vec));
    set_owned(DNNL_ARG_SHIFT, reorder_constant(*engine_, vec, s.bias.data(), vec));
    map_input(0, DNNL_ARG_SRC, md);
    map_output(0, DNNL_ARG_DST, md);
    if (!statistics_) return;
    // The statistics per line: the mean straight into output 1 (dense, checked by make_layer_norm), the variance
    // into memory owned here (allocated now, at Prepare), from which run() writes InvStdDev.
    const memory::desc stats = pd.mean_desc();
    lines_ = stats.dims()[0];
    if (has_output(ctx, 1))
      map_output(1, DNNL_ARG_MEAN, stats);
    else
      set_owned(DNNL_ARG_MEAN, memory(stats, engine_->engine));
    variance_ = memory(pd.variance_desc(), engine_->engine);
    set_owned(DNNL_ARG_VARIANCE, variance_);
    want_inv_std_dev_ = has_output(ctx, 2);
  }

  void bind(const std::vector<void*>& inputs, const std::vector<void*>& outputs, void* scratch) override {
    DnnlKernel::bind(inputs, outputs, scratch);
    inv_std_dev_ = want_inv_std_dev_ ? static_cast<float*>(outputs.at(2)) : nullptr;
  }

  void run() override {
    DnnlKernel::run();
    if (!inv_std_dev_) return;
    const float* variance = static_cast<const float*>(variance_.get_data_handle());
    for (int64_t i = 0; i < lines_; ++i) inv_std_dev_[i] = 1.0f / std::sqrt(variance[i] + epsilon_);
  }

 private:
  float epsilon_;
  bool statistics_, want_inv_std_dev_ = false;
  int64_t lines_ = 0;
  dnnl::memory variance_;
  float* inv_std_dev_ = nullptr;
};

class ReferenceLayerNorm : public PlainKernel {
 public:
  ReferenceLayerNorm(const KernelContext& ctx, LayerNormSpec s)
      : PlainKernel(ctx), s_(std::move(s)), in_(ctx.inputs[0]), out_(ctx.outputs[0]), lines_(in_) {
    if (has_output(ctx, 1)) mean_ = ctx.outputs[1];
    if (has_output(ctx, 2)) inv_std_dev_ = ctx.outputs[2];
    for (size_t d = s_.axis; d < lines_.dims.size(); ++d) lines_.dims[d] = 1;
    line_ = in_;  // one line: the normalized dims
    line_.dims.assign(in_.dims.begin() + static_cast<long>(s_.axis), in_.dims.end());
    line_.strides.assign(in_.strides.begin() + static_cast<long>(s_.axis), in_.strides.end());
    out_line_ = line_;
    out_line_.strides.assign(out_.strides.begin() + static_cast<long>(s_.axis), out_.strides.end());
  }

  void run() override {
    const float* x = input<float>(0);
    float* y = output<float>(0);
    for_each_index(lines_, [&](const std::vector<int64_t>& idx, int64_t in_offset) {
      int64_t out_offset = offset_of(out_, idx);
      double sum = 0, sq = 0;
      for_each_index(line_, [&](const std::vector<int64_t>&, int64_t o) { sum += x[in_offset + o]; });
      double mean = sum / static_cast<double>(s_.inner);
      for_each_index(line_, [&](const std::vector<int64_t>&, int64_t o) {
        double d = x[in_offset + o] - mean;
        sq += d * d;
      });
      double inv = 1.0 / std::sqrt(sq / static_cast<double>(s_.inner) + s_.epsilon);
      if (mean_) output<float>(1)[offset_of(*mean_, idx)] = static_cast<float>(mean);
      if (inv_std_dev_) output<float>(2)[offset_of(*inv_std_dev_, idx)] = static_cast<float>(inv);
      size_t k = 0;
      for_each_index(line_, [&](const std::vector<int64_t>& li, int64_t o) {
        double v = (x[in_offset + o] - mean) * inv * s_.scale[k] + s_.bias[k];
        y[out_offset + offset_of(out_line_, li)] = static_cast<float>(v);
        ++k;
      });
    });
  }

 private:
  LayerNormSpec s_;
  TensorDesc in_, out_, lines_, line_, out_line_;
  std::optional<TensorDesc> mean_, inv_std_dev_;  // the optional outputs, when the node has them
};

// A LayerNorm whose output is u8/s8 (an INT8 layer reads it): the float kernel writes into a buffer of this
// kernel's own, then the Quantize kernel (quantize.cpp, the same rounding as a Quantize node) writes the output.
// No Quantize node and no f32 tensor in the arena. Only output 0: the statistics outputs are f32.
class QuantizingLayerNorm : public Kernel {
 public:
  using Factory = std::unique_ptr<Kernel> (*)(const KernelContext&);
  QuantizingLayerNorm(const KernelContext& ctx, Factory make_float, Factory make_quantizer)
      : quantize_node_{ctx.node.name + "/quantize", "Quantize", {"x"}, {"y"}, {}},
        float_desc_(dense_desc(DType::f32, ctx.outputs[0].dims)) {
    for (size_t i = 1; i < ctx.node.outputs.size(); ++i)
      if (!ctx.node.outputs[i].empty())
        throw Error(node_label(ctx.node) + ": a LayerNormalization with a quantized output has no Mean or InvStdDev");
    KernelContext float_ctx = ctx;
    float_ctx.outputs[0] = float_desc_;
    norm_ = make_float(float_ctx);
    KernelContext quantize_ctx{quantize_node_, {float_desc_},      {nullptr}, {ctx.outputs[0]},
                               ctx.engine,     ctx.implementation, ctx.packed};
    quantize_ = make_quantizer(quantize_ctx);
    buffer_.resize(static_cast<size_t>(float_desc_.elements()));
  }
  size_t scratch_bytes() const override { return std::max(norm_->scratch_bytes(), quantize_->scratch_bytes()); }
  void bind(const std::vector<void*>& inputs, const std::vector<void*>& outputs, void* scratch) override {
    norm_->bind(inputs, {buffer_.data()}, scratch);
    quantize_->bind({buffer_.data()}, outputs, scratch);
  }
  void run() override {
    norm_->run();
    quantize_->run();
  }
  std::string implementation() const override { return norm_->implementation() + " + " + quantize_->implementation(); }

 private:
  Node quantize_node_;
  TensorDesc float_desc_;
  std::unique_ptr<Kernel> norm_, quantize_;
  std::vector<float> buffer_;
};

bool quantized_output(const KernelContext& ctx) {
  return ctx.outputs[0].dtype == DType::u8 || ctx.outputs[0].dtype == DType::s8;
}

std::unique_ptr<Kernel> make_float_layer_norm(const KernelContext& ctx) {
  LayerNormSpec s = read_spec(ctx);
  std::optional<dnnl::memory::desc> in = lines_md(ctx.inputs[0], s.inner), out = lines_md(ctx.outputs[0], s.inner);
  // oneDNN 2.6's layer normalization has one descriptor for src and dst; its statistics are dense vectors.
  bool dense_statistics = true;
  for (size_t i = 1; i < ctx.outputs.size(); ++i)
    dense_statistics = dense_statistics && (!has_output(ctx, i) || lines_md(ctx.outputs[i], 1).has_value());
  if (!in || !out || *in != *out || !dense_statistics) return std::make_unique<ReferenceLayerNorm>(ctx, std::move(s));
  return std::make_unique<DnnlLayerNorm>(ctx, s, *in);
}

std::unique_ptr<Kernel> make_float_layer_norm_reference(const KernelContext& ctx) {
  return std::make_unique<ReferenceLayerNorm>(ctx, read_spec(ctx));
}

}  // namespace

std::unique_ptr<Kernel> make_layer_norm(const KernelContext& ctx) {
  if (quantized_output(ctx)) return std::make_unique<QuantizingLayerNorm>(ctx, make_float_layer_norm, make_quantize);
  return make_float_layer_norm(ctx);
}

std::unique_ptr<Kernel> make_layer_norm_reference(const KernelContext& ctx) {
  if (quantized_output(ctx))
    return std::make_unique<QuantizingLayerNorm>(ctx, make_float_layer_norm_reference, make_quantize_reference);
  return make_float_layer_norm_reference(ctx);
}

}  // namespace octet::kernels
