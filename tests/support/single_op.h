// The single-op harness (ncnn style): one node with its inputs (shapes, dtypes, quantization, constants by
// input index, activation or "gapped" strided layouts), run through the optimized kernel and the plain C++
// reference via kernels::create_kernel, outputs read back in logical row-major order. describe() names the
// op, attributes, shapes, layout and seed for failure messages.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "kernels/kernel.h"

namespace octet::testing {

// One engine for every test of a process.
kernels::Engine& engine();

// activation: the executor's layout (NHWC-strided at rank 4). gapped: the same physical dim order with a
// one-element hole after every row of every dim, which no kernel may assume away. mixed (a whole case):
// each activation tensor gapped or not, chosen from the case's seed so both implementations see the same.
enum class StrideLayout { activation, gapped, mixed };
const char* layout_name(StrideLayout layout);
kernels::TensorDesc gapped_desc(const TensorInfo& info);
kernels::TensorDesc layout_desc(const TensorInfo& info, StrideLayout layout);

// Row-major values of each input (constants and absent inputs: empty), written in the input's dtype.
using Values = std::vector<std::vector<double>>;
// The same as raw bytes of each input's dtype.
using Bytes = std::vector<std::vector<uint8_t>>;

std::vector<double> to_values(const std::vector<float>& floats);
double read_element(const uint8_t* p, DType dtype);
void write_element(uint8_t* p, DType dtype, double v);

struct OpResult {
  std::vector<std::vector<uint8_t>> bytes;  // per output, logical row-major, raw bytes of its dtype
  std::vector<DType> dtypes;
  std::string implementation;

  std::vector<double> values(size_t output = 0) const;
  std::vector<float> floats(size_t output = 0) const;  // f32 outputs only
};

struct SingleOp {
  Node node;
  std::vector<TensorInfo> inputs;                  // every input's dtype, shape, quantization ("" inputs: empty)
  std::vector<StrideLayout> input_layouts;         // per input (activation unless set)
  std::map<size_t, Constant> constants;            // by input index; the other inputs are activations
  std::vector<TensorInfo> outputs;                 // empty: inferred by the op's schema
  std::vector<StrideLayout> output_layouts;        // per given output
  StrideLayout layout = StrideLayout::activation;  // mixed overrides the per-tensor layouts
  unsigned seed = 0;

  SingleOp() = default;
  // A node named test_<op> with inputs x0.. and outputs y0..
  SingleOp(const std::string& op, size_t n_inputs, size_t n_outputs = 1);
  explicit SingleOp(Node n) : node(std::move(n)) {}

  SingleOp& input(const Shape& shape, DType dtype = DType::f32, const QuantParams& quant = {},
                  StrideLayout tensor_layout = StrideLayout::activation);
  SingleOp& input_info(const TensorInfo& info, StrideLayout tensor_layout = StrideLayout::activation);
  SingleOp& constant(const Constant& c, const QuantParams& quant = {});
  SingleOp& output(const TensorInfo& info, StrideLayout tensor_layout = StrideLayout::activation);
  template <typename T>
  SingleOp& attr(const std::string& name, T value) {
    node.attrs.set(name, value);
    return *this;
  }

  std::vector<TensorInfo> output_infos() const;  // as given, or inferred
  // The descriptors the kernel is created with (for the same seed, the same ones every time).
  void descriptors(std::vector<kernels::TensorDesc>& ins, std::vector<kernels::TensorDesc>& outs) const;
  std::vector<const Constant*> constant_pointers() const;

  OpResult run(kernels::Implementation impl, const Values& values) const;
  OpResult run_bytes(kernels::Implementation impl, const Bytes& bytes) const;
  std::string describe() const;
};

// create_kernel with these descriptors (both implementations) must throw an Error that starts with the
// node's label and contains `what`.
void check_rejected(const SingleOp& c, const std::vector<kernels::TensorDesc>& inputs,
                    const std::vector<kernels::TensorDesc>& outputs, const std::string& what);

}  // namespace octet::testing
