// The in-memory graph: what a model file holds, independent of oneDNN.
//
// A Graph is a list of nodes in run order over named tensors. Activations are described by TensorInfo
// (dtype, shape with -1 for the symbolic batch dimension, quantization parameters); weights and other
// constants additionally carry their bytes in Graph::constants. Op-specific operands that ONNX passes as
// constant inputs (Reshape's shape, Slice's starts, Clip's bounds, ...) are attributes here: the converter
// moves them, so every op has one canonical form whatever the ONNX opset was.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "octet/error.h"
#include "octet/preprocess.h"

namespace octet {

enum class DType : uint8_t { f32, u8, s8, s32, s64 };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
// Throws Error naming `context` when `name` is not a dtype.
DType parse_dtype(const std::string& name, const std::string& context);

using Shape = std::vector<int64_t>;
constexpr int64_t kBatchDim = -1;  // the symbolic batch dimension "N" in a stored shape

int64_t shape_elements(const Shape& shape);  // throws on a negative (unresolved) dimension
std::string shape_str(const Shape& shape);   // "[N,3,224,224]"

// The size limit of any one tensor: a constant, or an activation at the batch a Session runs (graph/FORMAT.md).
// Checked at conversion, at load and when a Session is prepared, with arithmetic that cannot overflow.
constexpr int64_t kMaxTensorBytes = int64_t{1} << 32;  // 4 GiB
// Bytes of a dense tensor of `shape` (kBatchDim counted as 1), or -1 above kMaxTensorBytes. Never overflows;
// throws on another negative dimension.
int64_t capped_tensor_bytes(const Shape& shape, DType dtype);

// Scales and zero points of a quantized tensor: x = (q - zero_point) * scale.
// One value each for per-tensor; one per index along `axis` for per-channel.
struct QuantParams {
  std::vector<float> scales;
  std::vector<int32_t> zero_points;
  int axis = -1;  // -1: per tensor
  bool present() const { return !scales.empty(); }
  bool per_tensor() const { return axis == -1 && scales.size() == 1 && zero_points.size() == 1; }
  bool operator==(const QuantParams& o) const {
    return scales == o.scales && zero_points == o.zero_points && axis == o.axis;
  }
  bool operator!=(const QuantParams& o) const { return !(*this == o); }
};

struct TensorInfo {
  DType dtype = DType::f32;
  Shape shape;  // may contain kBatchDim
  QuantParams quant;
};

// The bytes of a constant: owned by this object, or a read-only view into model.bin mapped into memory
// (read_model maps the file rather than copying it, so weights a Session has repacked for oneDNN need not
// stay resident twice). Not copyable: constants share it through a shared_ptr.
class ConstantBytes {
 public:
  explicit ConstantBytes(std::vector<uint8_t> owned);
  // A view of [data, data + size) inside a mapping that `mapping` keeps alive.
  ConstantBytes(std::shared_ptr<const void> mapping, const uint8_t* data, size_t size);
  ConstantBytes(const ConstantBytes&) = delete;
  ConstantBytes& operator=(const ConstantBytes&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const uint8_t* begin() const { return data_; }
  const uint8_t* end() const { return data_ + size_; }
  bool operator==(const ConstantBytes& other) const;    // same contents
  bool is_view() const { return mapping_ != nullptr; }  // a view into a mapped model.bin
  // For a view into a mapped file: tells the OS it may drop the pages now; they are read from the file
  // again if touched later. Used once a kernel has repacked the weights. Does nothing for owned bytes.
  void release_pages() const;

 private:
  std::vector<uint8_t> owned_;
  std::shared_ptr<const void> mapping_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

std::shared_ptr<const ConstantBytes> make_bytes(std::vector<uint8_t> owned);

// Constant data (weights, biases, folded shapes). Bytes are little-endian, row-major, dense.
struct Constant {
  DType dtype = DType::f32;
  Shape shape;
  std::shared_ptr<const ConstantBytes> bytes;  // shared: copies of a Graph share weights

  int64_t elements() const { return shape_elements(shape); }
  template <typename T>
  const T* data() const {
    return reinterpret_cast<const T*>(bytes->data());
  }
  std::vector<int64_t> as_ints() const;  // s64/s32 constant as int64 values
  std::vector<float> as_floats() const;  // f32 constant as floats
  static Constant from_floats(const Shape& shape, const std::vector<float>& values);
  static Constant from_ints(const Shape& shape, const std::vector<int64_t>& values);
};

using AttrValue = std::variant<int64_t, float, std::string, std::vector<int64_t>, std::vector<float>>;

class Attributes {
 public:
  std::map<std::string, AttrValue> values;

  bool has(const std::string& name) const { return values.count(name) != 0; }
  int64_t get_int(const std::string& name, int64_t fallback) const;
  float get_float(const std::string& name, float fallback) const;
  std::string get_string(const std::string& name, const std::string& fallback) const;
  std::vector<int64_t> get_ints(const std::string& name, const std::vector<int64_t>& fallback = {}) const;
  std::vector<float> get_floats(const std::string& name, const std::vector<float>& fallback = {}) const;
  void set(const std::string& name, AttrValue value) { values[name] = std::move(value); }
};

struct Node {
  std::string name;
  std::string op;
  std::vector<std::string> inputs;  // "" marks an omitted optional input
  std::vector<std::string> outputs;
  Attributes attrs;
};

// How images become the input tensor; written by the converter, used by runtime/ image helpers.
// The model's preprocessing (octet/preprocess.h), when the converter recorded one.
struct Preprocess : PreprocessSpec {
  bool present = false;
};

struct Graph {
  std::string name;
  std::vector<std::string> inputs;            // graph inputs, in order (each has a TensorInfo)
  std::vector<std::string> outputs;           // graph outputs, in order
  std::map<std::string, TensorInfo> tensors;  // every non-constant tensor: inputs, activations, outputs
  std::map<std::string, Constant> constants;  // every constant tensor
  std::vector<Node> nodes;                    // in run order
  Preprocess preprocess;
  std::vector<std::string> labels;  // one per output class, may be empty

  bool is_constant(const std::string& name) const { return constants.count(name) != 0; }
  const Constant* find_constant(const std::string& name) const;
  const TensorInfo& tensor(const std::string& name) const;  // throws naming the tensor
  // Index of the node producing each tensor (absent for graph inputs and constants).
  std::map<std::string, size_t> producers() const;
  // For each tensor, the indices of the nodes reading it.
  std::map<std::string, std::vector<size_t>> consumers() const;
};

}  // namespace octet
