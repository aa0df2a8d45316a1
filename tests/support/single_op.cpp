#include "support/single_op.h"

#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <sstream>

#include "graph/ops.h"
#include "kernels/ops.h"

namespace octet::testing {

using kernels::Implementation;
using kernels::TensorDesc;

kernels::Engine& engine() {
  static kernels::Engine e;
  return e;
}

const char* layout_name(StrideLayout layout) {
  switch (layout) {
    case StrideLayout::activation: return "activation";
    case StrideLayout::gapped: return "gapped";
    case StrideLayout::mixed: return "mixed";
  }
  return "?";
}

TensorDesc gapped_desc(const TensorInfo& info) {
  TensorDesc d = kernels::activation_desc(info);
  std::vector<size_t> order = kernels::physical_order(d);
  int64_t stride = 1;
  for (size_t k = order.size(); k-- > 0;) {
    d.strides[order[k]] = stride;
    stride = stride * std::max<int64_t>(1, d.dims[order[k]]) + 1;
  }
  return d;
}

TensorDesc layout_desc(const TensorInfo& info, StrideLayout layout) {
  return layout == StrideLayout::gapped ? gapped_desc(info) : kernels::activation_desc(info);
}

std::vector<double> to_values(const std::vector<float>& floats) { return {floats.begin(), floats.end()}; }

double read_element(const uint8_t* p, DType dtype) {
  switch (dtype) {
    case DType::u8: return *p;
    case DType::s8: return static_cast<int8_t>(*p);
    case DType::s32: {
      int32_t v;
      std::memcpy(&v, p, sizeof v);
      return v;
    }
    case DType::f32: {
      float v;
      std::memcpy(&v, p, sizeof v);
      return v;
    }
    default: throw Error(std::string("test harness: unsupported dtype ") + dtype_name(dtype));
  }
}

void write_element(uint8_t* p, DType dtype, double v) {
  switch (dtype) {
    case DType::u8: *p = static_cast<uint8_t>(v); return;
    case DType::s8: *p = static_cast<uint8_t>(static_cast<int8_t>(v)); return;
    case DType::s32: {
      const int32_t i = static_cast<int32_t>(v);
      std::memcpy(p, &i, sizeof i);
      return;
    }
    case DType::s64: {
      const int64_t i = static_cast<int64_t>(v);
      std::memcpy(p, &i, sizeof i);
      return;
    }
    case DType::f32: {
      const float f = static_cast<float>(v);
      std::memcpy(p, &f, sizeof f);
      return;
    }
    default: throw Error(std::string("test harness: unsupported dtype ") + dtype_name(dtype));
  }
}

std::vector<double> OpResult::values(size_t output) const {
  const std::vector<uint8_t>& b = bytes.at(output);
  const size_t size = dtype_size(dtypes.at(output));
  std::vector<double> v;
  for (size_t i = 0; i < b.size(); i += size) v.push_back(read_element(&b[i], dtypes[output]));
  return v;
}

std::vector<float> OpResult::floats(size_t output) const {
  if (dtypes.at(output) != DType::f32) throw Error("test harness: floats() of a non-f32 output");
  std::vector<float> v(bytes.at(output).size() / 4);
  if (!v.empty()) std::memcpy(v.data(), bytes[output].data(), bytes[output].size());
  return v;
}

SingleOp::SingleOp(const std::string& op, size_t n_inputs, size_t n_outputs) {
  node.name = "test_" + op;
  node.op = op;
  for (size_t i = 0; i < n_inputs; ++i) node.inputs.push_back("x" + std::to_string(i));
  for (size_t i = 0; i < n_outputs; ++i) node.outputs.push_back("y" + std::to_string(i));
}

SingleOp& SingleOp::input(const Shape& shape, DType dtype, const QuantParams& quant, StrideLayout tensor_layout) {
  return input_info(TensorInfo{dtype, shape, quant}, tensor_layout);
}

SingleOp& SingleOp::input_info(const TensorInfo& info, StrideLayout tensor_layout) {
  input_layouts.resize(inputs.size(), StrideLayout::activation);
  inputs.push_back(info);
  input_layouts.push_back(tensor_layout);
  return *this;
}

SingleOp& SingleOp::constant(const Constant& c, const QuantParams& quant) {
  constants[inputs.size()] = c;
  return input_info(TensorInfo{c.dtype, c.shape, quant});
}

SingleOp& SingleOp::output(const TensorInfo& info, StrideLayout tensor_layout) {
  output_layouts.resize(outputs.size(), StrideLayout::activation);
  outputs.push_back(info);
  output_layouts.push_back(tensor_layout);
  return *this;
}

std::vector<TensorInfo> SingleOp::output_infos() const {
  if (!outputs.empty()) return outputs;
  const OpSchema* schema = find_op_schema(node.op);
  if (!schema) throw Error("test harness: unknown op '" + node.op + "'");
  std::vector<TensorInfo> outs;
  schema->infer(node, inputs, outs);
  return outs;
}

std::vector<const Constant*> SingleOp::constant_pointers() const {
  std::vector<const Constant*> pointers;
  for (size_t i = 0; i < inputs.size(); ++i) pointers.push_back(constants.count(i) ? &constants.at(i) : nullptr);
  return pointers;
}

void SingleOp::descriptors(std::vector<TensorDesc>& ins, std::vector<TensorDesc>& outs) const {
  // Mixed layouts: a per-tensor choice that depends only on the seed.
  std::mt19937 layout_rng(seed * 7919u + 17u);
  auto choose = [&](const TensorInfo& info, const std::vector<StrideLayout>& layouts, size_t i) {
    if (layout == StrideLayout::mixed)
      return layout_rng() % 3 != 0 ? gapped_desc(info) : kernels::activation_desc(info);
    return layout_desc(info, i < layouts.size() ? layouts[i] : StrideLayout::activation);
  };
  ins.clear();
  outs.clear();
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (constants.count(i)) {
      ins.push_back(kernels::dense_desc(inputs[i].dtype, inputs[i].shape));
      ins.back().quant = inputs[i].quant;
    } else {
      ins.push_back(choose(inputs[i], input_layouts, i));
    }
  }
  std::vector<TensorInfo> infos = output_infos();
  for (size_t i = 0; i < infos.size(); ++i) outs.push_back(choose(infos[i], output_layouts, i));
}

OpResult SingleOp::run(Implementation impl, const Values& values) const {
  Bytes bytes(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (constants.count(i) || i >= node.inputs.size() || node.inputs[i].empty()) continue;
    const size_t size = dtype_size(inputs[i].dtype);
    const std::vector<double>& v = values.at(i);
    bytes[i].resize(v.size() * size);
    for (size_t n = 0; n < v.size(); ++n) write_element(&bytes[i][n * size], inputs[i].dtype, v[n]);
  }
  return run_bytes(impl, bytes);
}

OpResult SingleOp::run_bytes(Implementation impl, const Bytes& bytes) const {
  validate_node(node);
  std::vector<const Constant*> constant_ptrs = constant_pointers();
  kernels::KernelContext ctx{node, {}, constant_ptrs, {}, engine(), impl};
  descriptors(ctx.inputs, ctx.outputs);
  std::unique_ptr<kernels::Kernel> kernel = kernels::create_kernel(ctx);

  // Activations go in through their strided layout; holes hold garbage, and outputs start as 0xFF (NaN
  // for f32), so unwritten elements show.
  std::vector<std::vector<uint8_t>> in_buffers(inputs.size()), out_buffers(ctx.outputs.size());
  std::vector<void*> ins, outs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (constant_ptrs[i] || node.inputs[i].empty()) {
      ins.push_back(nullptr);
      continue;
    }
    const TensorDesc& d = ctx.inputs[i];
    const size_t size = dtype_size(d.dtype);
    const std::vector<uint8_t>& logical = bytes.at(i);
    if (logical.size() != static_cast<size_t>(d.elements()) * size)  // not an assertion: keeps doctest's counts
      throw Error("test harness: " + describe() + ": input " + std::to_string(i) + " has " +
                  std::to_string(logical.size()) + " bytes, expects " +
                  std::to_string(d.elements() * static_cast<int64_t>(size)));
    in_buffers[i].assign(d.bytes(), 0xCD);
    size_t n = 0;
    kernels::for_each_index(d, [&](const std::vector<int64_t>&, int64_t offset) {
      std::memcpy(&in_buffers[i][static_cast<size_t>(offset) * size], &logical[n++ * size], size);
    });
    ins.push_back(in_buffers[i].data());
  }
  for (size_t i = 0; i < ctx.outputs.size(); ++i) {
    out_buffers[i].assign(ctx.outputs[i].bytes(), 0xFF);
    outs.push_back(out_buffers[i].data());
  }
  std::vector<uint8_t> scratch(kernel->scratch_bytes());
  kernel->bind(ins, outs, scratch.data());
  kernel->run();

  OpResult result;
  result.implementation = kernel->implementation();
  for (size_t i = 0; i < ctx.outputs.size(); ++i) {
    const TensorDesc& d = ctx.outputs[i];
    const size_t size = dtype_size(d.dtype);
    result.dtypes.push_back(d.dtype);
    result.bytes.emplace_back();
    std::vector<uint8_t>& logical = result.bytes.back();
    kernels::for_each_index(d, [&](const std::vector<int64_t>&, int64_t offset) {
      const uint8_t* p = &out_buffers[i][static_cast<size_t>(offset) * size];
      logical.insert(logical.end(), p, p + size);
    });
  }
  return result;
}

namespace {

void print_quant(std::ostream& s, const QuantParams& q) {
  if (q.scales.empty()) return;
  s << "{scale " << q.scales[0] << (q.scales.size() > 1 ? ".." : "");
  if (!q.zero_points.empty()) s << " zp " << q.zero_points[0];
  if (q.axis >= 0) s << " axis " << q.axis;
  s << "}";
}

}  // namespace

std::string SingleOp::describe() const {
  std::ostringstream s;
  s << node.op << " seed=" << seed << " layout=" << layout_name(layout);
  for (size_t i = 0; i < inputs.size(); ++i) {
    s << " in" << i << "=" << shape_str(inputs[i].shape) << ":" << dtype_name(inputs[i].dtype);
    print_quant(s, inputs[i].quant);
    if (constants.count(i))
      s << "(const)";
    else if (layout != StrideLayout::mixed && i < input_layouts.size() && input_layouts[i] != StrideLayout::activation)
      s << "(" << layout_name(input_layouts[i]) << ")";
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    s << " out" << i << "=" << shape_str(outputs[i].shape) << ":" << dtype_name(outputs[i].dtype);
    print_quant(s, outputs[i].quant);
    if (layout != StrideLayout::mixed && i < output_layouts.size() && output_layouts[i] != StrideLayout::activation)
      s << "(" << layout_name(output_layouts[i]) << ")";
  }
  for (const auto& kv : node.attrs.values) {
    s << " " << kv.first << "=";
    if (auto* i = std::get_if<int64_t>(&kv.second))
      s << *i;
    else if (auto* f = std::get_if<float>(&kv.second))
      s << *f;
    else if (auto* str = std::get_if<std::string>(&kv.second))
      s << "'" << *str << "'";
    else if (auto* v = std::get_if<std::vector<int64_t>>(&kv.second)) {
      s << "[";
      for (size_t i = 0; i < v->size(); ++i) s << (i ? "," : "") << (*v)[i];
      s << "]";
    } else if (auto* fv = std::get_if<std::vector<float>>(&kv.second)) {
      s << "[";
      for (size_t i = 0; i < fv->size(); ++i) s << (i ? "," : "") << (*fv)[i];
      s << "]";
    }
  }
  return s.str();
}

void check_rejected(const SingleOp& c, const std::vector<TensorDesc>& inputs, const std::vector<TensorDesc>& outputs,
                    const std::string& what) {
  std::vector<const Constant*> constants = c.constant_pointers();
  constants.resize(inputs.size(), nullptr);
  for (Implementation impl : {Implementation::optimized, Implementation::reference}) {
    kernels::KernelContext ctx{c.node, inputs, constants, outputs, engine(), impl};
    std::string message;
    try {
      kernels::create_kernel(ctx);
    } catch (const Error& e) {
      message = e.what();
    }
    CHECK_MESSAGE(message.rfind(node_label(c.node), 0) == 0, c.describe() << ": got '" << message << "'");
    CHECK_MESSAGE(message.find(what) != std::string::npos, c.describe()
                                                               << ": got '" << message << "', want '" << what << "'");
  }
}

}  // namespace octet::testing
