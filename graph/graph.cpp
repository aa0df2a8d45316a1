#include "graph/graph.h"

#include <algorithm>

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

namespace octet {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32: return 4;
    case DType::u8: return 1;
    case DType::s8: return 1;
    case DType::s32: return 4;
    case DType::s64: return 8;
  }
  throw Error("invalid dtype");
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "f32";
    case DType::u8: return "u8";
    case DType::s8: return "s8";
    case DType::s32: return "s32";
    case DType::s64: return "s64";
  }
  return "?";
}

DType parse_dtype(const std::string& name, const std::string& context) {
  for (DType d : {DType::f32, DType::u8, DType::s8, DType::s32, DType::s64})
    if (name == dtype_name(d)) return d;
  throw Error(context + ": unknown dtype '" + name + "' (expected f32, u8, s8, s32 or s64)");
}

int64_t shape_elements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error("shape " + shape_str(shape) + " has an unresolved dimension");
    if (d != 0 && n > INT64_MAX / d) throw Error("shape " + shape_str(shape) + " overflows");
    n *= d;
  }
  return n;
}

int64_t capped_tensor_bytes(const Shape& shape, DType dtype) {
  for (int64_t d : shape)
    if (d < 0 && d != kBatchDim) throw Error("shape " + shape_str(shape) + " has a negative dimension");
  if (std::count(shape.begin(), shape.end(), 0)) return 0;
  int64_t bytes = static_cast<int64_t>(dtype_size(dtype));
  for (int64_t d : shape) {
    int64_t n = d == kBatchDim ? 1 : d;
    if (n > kMaxTensorBytes / bytes) return -1;
    bytes *= n;
  }
  return bytes;
}

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += shape[i] == kBatchDim ? "N" : std::to_string(shape[i]);
  }
  return s + "]";
}

ConstantBytes::ConstantBytes(std::vector<uint8_t> owned)
    : owned_(std::move(owned)), data_(owned_.data()), size_(owned_.size()) {}

ConstantBytes::ConstantBytes(std::shared_ptr<const void> mapping, const uint8_t* data, size_t size)
    : mapping_(std::move(mapping)), data_(data), size_(size) {}

bool ConstantBytes::operator==(const ConstantBytes& other) const {
  return size_ == other.size_ && (size_ == 0 || std::memcmp(data_, other.data_, size_) == 0);
}

void ConstantBytes::release_pages() const {
  if (!mapping_ || size_ == 0) return;
  // Only whole pages inside this constant: its neighbours may share the first and last page.
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  uintptr_t begin = (reinterpret_cast<uintptr_t>(data_) + page - 1) / page * page;
  uintptr_t end = (reinterpret_cast<uintptr_t>(data_) + size_) / page * page;
  // A private, never-written file mapping: dropped pages are read back from the file on the next access.
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

std::shared_ptr<const ConstantBytes> make_bytes(std::vector<uint8_t> owned) {
  return std::make_shared<const ConstantBytes>(std::move(owned));
}

std::vector<int64_t> Constant::as_ints() const {
  int64_t n = elements();
  std::vector<int64_t> v(static_cast<size_t>(n));
  if (dtype == DType::s64) {
    std::memcpy(v.data(), bytes->data(), static_cast<size_t>(n) * 8);
  } else if (dtype == DType::s32) {
    for (int64_t i = 0; i < n; ++i) v[i] = data<int32_t>()[i];
  } else {
    throw Error(std::string("expected an integer constant, got ") + dtype_name(dtype));
  }
  return v;
}

std::vector<float> Constant::as_floats() const {
  if (dtype != DType::f32) throw Error(std::string("expected an f32 constant, got ") + dtype_name(dtype));
  const float* p = data<float>();
  return std::vector<float>(p, p + elements());
}

Constant Constant::from_floats(const Shape& shape, const std::vector<float>& values) {
  Constant c;
  c.dtype = DType::f32;
  c.shape = shape;
  std::vector<uint8_t> bytes(values.size() * 4);
  if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());  // an empty vector's data() may be null
  c.bytes = make_bytes(std::move(bytes));
  return c;
}

Constant Constant::from_ints(const Shape& shape, const std::vector<int64_t>& values) {
  Constant c;
  c.dtype = DType::s64;
  c.shape = shape;
  std::vector<uint8_t> bytes(values.size() * 8);
  if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());  // an empty vector's data() may be null
  c.bytes = make_bytes(std::move(bytes));
  return c;
}

namespace {
template <typename T>
const T* attr_as(const Attributes& attrs, const std::string& name, const char* kind) {
  auto it = attrs.values.find(name);
  if (it == attrs.values.end()) return nullptr;
  const T* v = std::get_if<T>(&it->second);
  if (!v) throw Error("attribute '" + name + "' is not " + kind);
  return v;
}
}  // namespace

int64_t Attributes::get_int(const std::string& name, int64_t fallback) const {
  const int64_t* v = attr_as<int64_t>(*this, name, "an integer");
  return v ? *v : fallback;
}
float Attributes::get_float(const std::string& name, float fallback) const {
  auto it = values.find(name);
  if (it != values.end())
    if (const int64_t* i = std::get_if<int64_t>(&it->second)) return static_cast<float>(*i);
  const float* v = attr_as<float>(*this, name, "a float");
  return v ? *v : fallback;
}
std::string Attributes::get_string(const std::string& name, const std::string& fallback) const {
  const std::string* v = attr_as<std::string>(*this, name, "a string");
  return v ? *v : fallback;
}
std::vector<int64_t> Attributes::get_ints(const std::string& name, const std::vector<int64_t>& fallback) const {
  const auto* v = attr_as<std::vector<int64_t>>(*this, name, "a list of integers");
  return v ? *v : fallback;
}
std::vector<float> Attributes::get_floats(const std::string& name, const std::vector<float>& fallback) const {
  const auto* v = attr_as<std::vector<float>>(*this, name, "a list of floats");
  return v ? *v : fallback;
}

const Constant* Graph::find_constant(const std::string& name) const {
  auto it = constants.find(name);
  return it == constants.end() ? nullptr : &it->second;
}

const TensorInfo& Graph::tensor(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw Error("tensor '" + name + "' is not defined");
  return it->second;
}

std::map<std::string, size_t> Graph::producers() const {
  std::map<std::string, size_t> result;
  for (size_t i = 0; i < nodes.size(); ++i)
    for (const std::string& o : nodes[i].outputs) result[o] = i;
  return result;
}

std::map<std::string, std::vector<size_t>> Graph::consumers() const {
  std::map<std::string, std::vector<size_t>> result;
  for (size_t i = 0; i < nodes.size(); ++i)
    for (const std::string& in : nodes[i].inputs)
      if (!in.empty()) result[in].push_back(i);
  return result;
}

}  // namespace octet
