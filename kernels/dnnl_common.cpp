#include "kernels/dnnl_common.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>

#include "kernels/quantized_linear.h"

namespace octet::kernels {

size_t TensorDesc::bytes() const {
  if (dims.empty()) return dtype_size(dtype);
  int64_t span = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == 0) return 0;
    span += (dims[i] - 1) * strides[i];
  }
  return static_cast<size_t>(span) * dtype_size(dtype);
}

Strides dense_strides(const Shape& dims) {
  Strides s(dims.size());
  int64_t stride = 1;
  for (size_t i = dims.size(); i-- > 0;) {
    s[i] = stride;
    stride *= std::max<int64_t>(dims[i], 1);
  }
  return s;
}

Strides activation_strides(const Shape& dims) {
  if (dims.size() != 4) return dense_strides(dims);
  int64_t c = std::max<int64_t>(dims[1], 1), h = std::max<int64_t>(dims[2], 1), w = std::max<int64_t>(dims[3], 1);
  return {h * w * c, 1, w * c, c};
}

TensorDesc activation_desc(const TensorInfo& info) {
  TensorDesc d;
  d.dtype = info.dtype;
  d.dims = info.shape;
  d.strides = activation_strides(info.shape);
  d.quant = info.quant;
  return d;
}

TensorDesc dense_desc(DType dtype, const Shape& dims) {
  TensorDesc d;
  d.dtype = dtype;
  d.dims = dims;
  d.strides = dense_strides(dims);
  return d;
}

Engine::Engine() : impl_(std::make_unique<Impl>()) {}
Engine::~Engine() = default;

void set_num_threads(int threads) {
  if (threads > 0) omp_set_num_threads(threads);
}
int num_threads() { return omp_get_max_threads(); }

dnnl::memory::data_type to_dnnl(DType dtype) {
  using dt = dnnl::memory::data_type;
  switch (dtype) {
    case DType::f32: return dt::f32;
    case DType::u8: return dt::u8;
    case DType::s8: return dt::s8;
    case DType::s32: return dt::s32;
    case DType::s64: break;
  }
  throw Error(std::string("oneDNN has no ") + dtype_name(dtype) + " tensors");
}

dnnl::memory::dims to_dims(const Shape& shape) { return dnnl::memory::dims(shape.begin(), shape.end()); }

dnnl::memory::desc to_md(const TensorDesc& desc) {
  // oneDNN has no rank-0 tensors; a scalar is a [1] tensor.
  if (desc.dims.empty()) return dnnl::memory::desc({1}, to_dnnl(desc.dtype), dnnl::memory::dims{1});
  return dnnl::memory::desc(to_dims(desc.dims), to_dnnl(desc.dtype), to_dims(desc.strides));
}

dnnl::primitive_attr base_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

void DnnlKernel::set_primitive(const dnnl::primitive& primitive, const dnnl::primitive_desc_base& pd) {
  primitive_ = primitive;
  scratch_md_ = pd.scratchpad_desc();
  impl_ = pd.impl_info_str();
}

void DnnlKernel::bind(const std::vector<void*>& inputs, const std::vector<void*>& outputs, void* scratch) {
  for (const ArgMap& a : input_args_) args_[a.arg] = dnnl::memory(a.md, engine_->engine, inputs.at(a.index));
  for (const ArgMap& a : output_args_) args_[a.arg] = dnnl::memory(a.md, engine_->engine, outputs.at(a.index));
  if (scratch_md_.get_size() > 0) args_[DNNL_ARG_SCRATCHPAD] = dnnl::memory(scratch_md_, engine_->engine, scratch);
  exec_args_.clear();
  for (const auto& kv : args_) exec_args_.push_back({kv.first, kv.second.get()});
}

void DnnlKernel::run() {
  dnnl_status_t status = dnnl_primitive_execute(primitive_.get(), engine_->stream.get(),
                                                static_cast<int>(exec_args_.size()), exec_args_.data());
  if (status != dnnl_success)
    throw Error("oneDNN failed to execute " + impl_ + " (status " + std::to_string(static_cast<int>(status)) + ")");
}

void reorder_into(Engine::Impl& engine, const dnnl::memory::desc& source, const void* data, dnnl::memory& dst) {
  dnnl::memory src(source, engine.engine, const_cast<void*>(data));
  dnnl::reorder(src, dst).execute(engine.stream, src, dst);
  engine.stream.wait();
}

dnnl::memory reorder_constant(Engine::Impl& engine, const dnnl::memory::desc& source, const void* data,
                              const dnnl::memory::desc& target) {
  dnnl::memory dst(target, engine.engine);
  reorder_into(engine, source, data, dst);
  return dst;
}

namespace {

// The dim of `view` that walks the stored dense tensor's `axis` (same extent and stride), or -1.
int view_dim_of_axis(const dnnl::memory::desc& view, const Shape& stored_shape, int axis) {
  int64_t stride = 1;
  for (size_t d = static_cast<size_t>(axis) + 1; d < stored_shape.size(); ++d) stride *= stored_shape[d];
  const dnnl::memory::dims dims = view.dims();
  const auto& strides = view.data.format_desc.blocking.strides;
  for (size_t d = 0; d < dims.size(); ++d)
    if (dims[d] == stored_shape[static_cast<size_t>(axis)] && strides[d] == stride) return static_cast<int>(d);
  return -1;
}

}  // namespace

void append_round_before_zero_point(dnnl::post_ops& ops, const LinearQuant& q, DType dst) {
  if (q.quantized && q.dst_zp != 0 && (dst == DType::u8 || dst == DType::s8))
    ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_round, 0.0f, 0.0f);
}

dnnl::memory float_weights_in(Engine::Impl& engine, PackedWeights* packed, const Constant& constant,
                              const QuantParams& quant, const dnnl::memory::desc& stored,
                              const dnnl::memory::desc& target, const std::string& context) {
  if (constant.dtype == DType::f32) return packed_weights(engine, packed, constant, stored, target);
  // The scales are part of what is packed: they name the packed form along with the constant.
  const std::string scales(reinterpret_cast<const char*>(quant.scales.data()), quant.scales.size() * sizeof(float));
  if (constant.dtype == DType::s8 && !quant.scales.empty()) {
    int mask = -1;
    if (quant.scales.size() == 1)
      mask = 0;
    else if (quant.axis >= 0 && quant.axis < static_cast<int>(constant.shape.size()) &&
             constant.shape[static_cast<size_t>(quant.axis)] == static_cast<int64_t>(quant.scales.size())) {
      int d = view_dim_of_axis(stored, constant.shape, quant.axis);
      if (d >= 0) mask = 1 << d;
    }
    bool symmetric =
        std::all_of(quant.zero_points.begin(), quant.zero_points.end(), [](int32_t zp) { return zp == 0; });
    if (mask >= 0 && symmetric) {
      return packed_constant(engine, packed, constant, "dequantized" + scales, target, [&](dnnl::memory& dst) {
        dnnl::memory::desc source = stored;  // the same plain strided layout, holding s8
        source.data.data_type = dnnl_s8;
        dnnl::memory src(source, engine.engine, const_cast<uint8_t*>(constant.bytes->data()));
        dnnl::primitive_attr attr;
        attr.set_output_scales(mask, quant.scales);  // f32 = s8 * scale, as dequantize_value
        dnnl::reorder(dnnl::reorder::primitive_desc(src, dst, attr)).execute(engine.stream, src, dst);
        engine.stream.wait();
      });
    }
  }
  // s8 whose scales run along no single dim of the view (a grouped conv's output channels): via floats.
  return packed_constant(engine, packed, constant, "float" + scales, target, [&](dnnl::memory& dst) {
    std::vector<float> values = float_weights(constant, quant, context);
    reorder_into(engine, stored, values.data(), dst);
  });
}

dnnl::memory packed_constant(Engine::Impl& engine, PackedWeights* packed, const Constant& constant,
                             const std::string& variant, const dnnl::memory::desc& target,
                             const std::function<void(dnnl::memory&)>& fill) {
  if (!packed) {
    dnnl::memory dst(target, engine.engine);
    fill(dst);
    return dst;
  }
  // The constant's bytes live as long as the Model that owns `packed`, so their address names it.
  std::string key = std::to_string(reinterpret_cast<uintptr_t>(constant.bytes->data())) + ":" +
                    std::to_string(constant.bytes->size()) + ":" +
                    std::string(reinterpret_cast<const char*>(&target.data), sizeof(target.data)) + variant;
  std::shared_ptr<const void> buffer = packed->get(key, target.get_size(), [&](void* p) {
    dnnl::memory dst(target, engine.engine, p);
    fill(dst);
  });
  // The Model owning `packed` outlives every Session (each holds the Model), so this memory never dangles.
  // oneDNN only reads weights; the memory object just needs a non-const handle.
  return dnnl::memory(target, engine.engine, const_cast<void*>(buffer.get()));
}

dnnl::memory packed_weights(Engine::Impl& engine, PackedWeights* packed, const Constant& constant,
                            const dnnl::memory::desc& source, const dnnl::memory::desc& target) {
  return packed_constant(engine, packed, constant, "", target,
                         [&](dnnl::memory& dst) { reorder_into(engine, source, constant.bytes->data(), dst); });
}

std::shared_ptr<const void> PackedWeights::get(const std::string& key, size_t bytes,
                                               const std::function<void(void*)>& fill) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = buffers_.find(key);
  if (it != buffers_.end()) return it->second;
  size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
  std::shared_ptr<void> buffer(std::aligned_alloc(64, rounded), std::free);
  if (!buffer) throw Error("out of memory packing " + std::to_string(bytes) + " bytes of weights");
  fill(buffer.get());  // under the lock: two sessions preparing at once pack each weight once
  buffers_.emplace(key, buffer);
  total_bytes_ += bytes;
  return buffer;
}

size_t PackedWeights::total_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return total_bytes_;
}

}  // namespace octet::kernels
