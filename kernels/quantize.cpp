// Quantize (f32 -> u8/s8 with the output's parameters) and Dequantize (u8/s8 -> f32 with the input's):
//   q = clamp(round_half_to_even(x / scale) + zero_point, qmin, qmax),  x = (q - zero_point) * scale,
// with [qmin, qmax] from quantized_range(): u8 [0, 255], s8 the narrow [-127, 127]. Per-tensor parameters.
// Reference: quantize_value / dequantize_value from graph/quantization.h per element.
//
// Optimized, one oneDNN primitive created at Prepare, reading and writing through the tensors' strides:
//  - Quantize: a binary x / scale with f32 post-ops round (half to even), + zero_point, clip to [qmin, qmax],
//    then an exact conversion to u8/s8. Every step is the reference's, so the results are bit-identical,
//    NaN included (-> qmin). A reorder with output scale 1 / scale and a dst zero point, the obvious choice,
//    has three faults in oneDNN 2.6: its jit:uni implementation adds the zero point to only part of the
//    elements when the destination is not dense (132 of about 300 random shapes with holes between rows
//    came out wrong, constant or run-time zero points alike), it saturates s8 to -128, outside the narrow
//    range, and it rounds x * (1 / scale), which lands one unit off the reference next to .5 ties.
//    The binary is also faster (see RESULTS.md, Design measurements).
//  - Dequantize: a reorder with output scale `scale` and the src zero point, exact since (q - zero_point) is
//    an integer and one product is rounded, as in the reference. A binary with an integer source runs only
//    as oneDNN's slow reference implementation, so it serves just the destinations that are not dense,
//    where the reorder has the zero-point fault above: (q - zero_point) then a linear post-op * scale.
#include <cmath>
#include <sstream>

#include "graph/ops.h"
#include "graph/quantization.h"
#include "kernels/dnnl_common.h"
#include "kernels/ops.h"

namespace octet::kernels {
namespace {

struct QuantizeSpec {
  bool quantize = true;  // Quantize (f32 -> quantized) or Dequantize (quantized -> f32)
  DType quantized = DType::u8;
  float scale = 1.0f;
  int32_t zero_point = 0;
};

// Validates the node and reads the parameters of its quantized side; errors name the node and the field.
QuantizeSpec read_spec(const KernelContext& ctx) {
  const Node& node = ctx.node;
  const std::string label = node_label(node);
  if (node.op != "Quantize" && node.op != "Dequantize") throw Error(label + ": not Quantize or Dequantize");
  QuantizeSpec spec;
  spec.quantize = node.op == "Quantize";
  const TensorDesc& in = ctx.inputs.at(0);
  const TensorDesc& out = ctx.outputs.at(0);
  const TensorDesc& real = spec.quantize ? in : out;
  const TensorDesc& quantized = spec.quantize ? out : in;
  const std::string real_name = spec.quantize ? "input 0" : "output 0";
  const std::string quantized_name = spec.quantize ? "output 0" : "input 0";
  if (real.dtype != DType::f32)
    throw Error(label + ": " + real_name + " has dtype " + dtype_name(real.dtype) + ", " + node.op +
                " needs f32 there");
  if (quantized.dtype != DType::u8 && quantized.dtype != DType::s8)
    throw Error(label + ": " + quantized_name + " has dtype " + dtype_name(quantized.dtype) + ", " + node.op +
                " needs u8 or s8 there");
  if (in.dims != out.dims)
    throw Error(label + ": input 0 " + shape_str(in.dims) + " and output 0 " + shape_str(out.dims) +
                " differ in shape");

  const PerTensorQuant params = require_per_tensor_params(node, quantized, quantized_name);
  spec.quantized = quantized.dtype;
  spec.scale = params.scale;
  spec.zero_point = params.zero_point;
  return spec;
}

bool is_dense(const TensorDesc& desc) {
  return desc.bytes() == static_cast<size_t>(desc.elements()) * dtype_size(desc.dtype);
}

class DnnlQuantize : public DnnlKernel {
 public:
  explicit DnnlQuantize(const KernelContext& ctx) : DnnlKernel(ctx.engine) {
    using namespace dnnl;
    const QuantizeSpec spec = read_spec(ctx);
    // An elementwise op between two tensors of the same dense layout is a flat array operation: as 1-D
    // descriptors oneDNN vectorizes it fully (an NHWC image of 3 channels otherwise runs many times slower;
    // see RESULTS.md, Design measurements).
    const bool flat = ctx.inputs[0].strides == ctx.outputs[0].strides && is_dense(ctx.inputs[0]);
    const memory::dims flat_dims = {ctx.inputs[0].elements()};
    const memory::desc src =
        flat ? memory::desc(flat_dims, to_dnnl(ctx.inputs[0].dtype), memory::format_tag::a) : to_md(ctx.inputs[0]);
    const memory::desc dst =
        flat ? memory::desc(flat_dims, to_dnnl(ctx.outputs[0].dtype), memory::format_tag::a) : to_md(ctx.outputs[0]);
    post_ops ops;
    if (spec.quantize) {
      const IntRange range = quantized_range(spec.quantized);
      ops.append_eltwise(1.0f, algorithm::eltwise_round, 0.0f, 0.0f);
      ops.append_eltwise(1.0f, algorithm::eltwise_linear, 1.0f, static_cast<float>(spec.zero_point));
      ops.append_eltwise(1.0f, algorithm::eltwise_clip, static_cast<float>(range.min), static_cast<float>(range.max));
      set_binary(algorithm::binary_div, src, spec.scale, dst, ops);
    } else if (is_dense(ctx.outputs[0])) {
      primitive_attr attr = base_attr();
      attr.set_output_scales(0, {spec.scale});
      attr.set_zero_points(DNNL_ARG_SRC, 0, {spec.zero_point});
      reorder::primitive_desc pd(engine_->engine, src, engine_->engine, dst, attr);
      set_primitive(reorder(pd), pd);
    } else {
      ops.append_eltwise(1.0f, algorithm::eltwise_linear, spec.scale, 0.0f);
      set_binary(algorithm::binary_sub, src, static_cast<float>(spec.zero_point), dst, ops);
    }
    // The binary's DNNL_ARG_SRC_0 is the reorder's DNNL_ARG_FROM, and both write DNNL_ARG_DST.
    map_input(0, DNNL_ARG_SRC, src);
    map_output(0, DNNL_ARG_DST, dst);
  }

 private:
  // dst = ops(src `algorithm` constant), the constant an owned f32 scalar broadcast over src.
  void set_binary(dnnl::algorithm algorithm, const dnnl::memory::desc& src, float constant,
                  const dnnl::memory::desc& dst, const dnnl::post_ops& ops) {
    using namespace dnnl;
    const memory::dims ones(static_cast<size_t>(src.data.ndims), 1);
    const memory::desc scalar_md(ones, memory::data_type::f32, ones);
    memory scalar(scalar_md, engine_->engine);
    *static_cast<float*>(scalar.get_data_handle()) = constant;
    primitive_attr attr = base_attr();
    attr.set_post_ops(ops);
    binary::primitive_desc pd(binary::desc(algorithm, src, scalar_md, dst), attr, engine_->engine);
    set_primitive(binary(pd), pd);
    set_owned(DNNL_ARG_SRC_1, scalar);
  }
};

class ReferenceQuantize : public PlainKernel {
 public:
  explicit ReferenceQuantize(const KernelContext& ctx)
      : PlainKernel(ctx), spec_(read_spec(ctx)), in_(ctx.inputs[0]), out_(ctx.outputs[0]) {}

  void run() override {
    if (spec_.quantized == DType::u8)
      convert<uint8_t>();
    else
      convert<int8_t>();
  }

 private:
  template <typename Q>
  void convert() {
    const IntRange range = quantized_range(spec_.quantized);
    for_each_index(in_, [&](const std::vector<int64_t>& index, int64_t in_offset) {
      const int64_t out_offset = offset_of(out_, index);
      if (spec_.quantize)
        output<Q>(0)[out_offset] = static_cast<Q>(
            quantize_value(input<float>(0)[in_offset], spec_.scale, spec_.zero_point, range.min, range.max));
      else
        output<float>(0)[out_offset] = dequantize_value(input<Q>(0)[in_offset], spec_.scale, spec_.zero_point);
    });
  }

  QuantizeSpec spec_;
  TensorDesc in_, out_;
};

}  // namespace

std::unique_ptr<Kernel> make_quantize(const KernelContext& ctx) {
  require_activation(ctx, 0);
  return std::make_unique<DnnlQuantize>(ctx);
}

std::unique_ptr<Kernel> make_quantize_reference(const KernelContext& ctx) {
  return std::make_unique<ReferenceQuantize>(ctx);
}

}  // namespace octet::kernels
