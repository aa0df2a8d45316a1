#include "converters/onnx/proto.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace octet::onnx {
namespace {

// Copies typed-field values (float_data, int64_data, int32_data) into little-endian bytes of `dtype`.
template <typename Field>
std::vector<uint8_t> bytes_from_field(const Field& field, DType dtype) {
  std::vector<uint8_t> bytes(static_cast<size_t>(field.size()) * dtype_size(dtype));
  for (int i = 0; i < field.size(); ++i) {
    uint8_t* at = bytes.data() + static_cast<size_t>(i) * dtype_size(dtype);
    switch (dtype) {
      case DType::f32: {
        float v = static_cast<float>(field.Get(i));
        std::memcpy(at, &v, 4);
        break;
      }
      case DType::s64: {
        int64_t v = static_cast<int64_t>(field.Get(i));
        std::memcpy(at, &v, 8);
        break;
      }
      case DType::s32: {
        int32_t v = static_cast<int32_t>(field.Get(i));
        std::memcpy(at, &v, 4);
        break;
      }
      case DType::s8: {
        int8_t v = static_cast<int8_t>(field.Get(i));
        std::memcpy(at, &v, 1);
        break;
      }
      case DType::u8: {
        uint8_t v = static_cast<uint8_t>(field.Get(i));
        std::memcpy(at, &v, 1);
        break;
      }
    }
  }
  return bytes;
}

}  // namespace

void read_proto_file(const std::string& path, google::protobuf::MessageLite& message, const char* what) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw Error(path + ": is a folder, not an " + std::string(what) + " file");
  std::ifstream file(path, std::ios::binary);
  if (!file) throw Error("cannot open " + std::string(what) + " file '" + path + "'");
  std::ostringstream contents;
  contents << file.rdbuf();
  // An empty file parses as an empty message; it would fail later for a missing field ("declares no opset").
  if (contents.str().empty()) throw Error(path + ": is empty (0 bytes), not an " + std::string(what));
  if (!message.ParseFromString(contents.str()))
    throw Error(path + ": not a valid " + what + " (protobuf parse failed)");
}

DType dtype_from_onnx(int32_t data_type, const std::string& context) {
  switch (data_type) {
    case ::onnx::TensorProto::FLOAT: return DType::f32;
    case ::onnx::TensorProto::INT64: return DType::s64;
    case ::onnx::TensorProto::INT32: return DType::s32;
    case ::onnx::TensorProto::INT8: return DType::s8;
    case ::onnx::TensorProto::UINT8:
    case ::onnx::TensorProto::BOOL: return DType::u8;  // one byte, 0 or 1 (Dropout's training_mode, test data)
    default: break;
  }
  std::string name = ::onnx::TensorProto::DataType_IsValid(data_type)
                         ? ::onnx::TensorProto::DataType_Name(static_cast<::onnx::TensorProto::DataType>(data_type))
                         : std::to_string(data_type);
  throw Error(context + ": element type " + name +
              " is not supported (octet reads float, int64, int32, int8, uint8, bool)");
}

Constant constant_from_tensor_proto(const ::onnx::TensorProto& tensor, const std::string& context) {
  if (tensor.data_location() == ::onnx::TensorProto::EXTERNAL)
    throw Error(context + ": data is stored in an external file, which octet does not read");
  if (tensor.has_segment()) throw Error(context + ": segmented tensors are not supported");
  Constant constant;
  constant.dtype = dtype_from_onnx(tensor.data_type(), context);
  for (int64_t d : tensor.dims()) {
    if (d < 0) throw Error(context + ": negative dimension " + std::to_string(d));
    constant.shape.push_back(d);
  }
  // Checked: a declared [2^62] of floats must not wrap to 0 bytes and pass with empty data.
  int64_t capped = capped_tensor_bytes(constant.shape, constant.dtype);
  if (capped < 0)
    throw Error(context + ": shape " + shape_str(constant.shape) + " of " + dtype_name(constant.dtype) +
                " is larger than the limit of " + std::to_string(kMaxTensorBytes) + " bytes for one tensor");
  size_t expected = static_cast<size_t>(capped);
  std::vector<uint8_t> bytes;
  if (tensor.has_raw_data()) {
    bytes.assign(tensor.raw_data().begin(), tensor.raw_data().end());
  } else if (constant.dtype == DType::f32) {
    bytes = bytes_from_field(tensor.float_data(), constant.dtype);
  } else if (constant.dtype == DType::s64) {
    bytes = bytes_from_field(tensor.int64_data(), constant.dtype);
  } else {  // ONNX stores int32, int8 and uint8 values in int32_data
    bytes = bytes_from_field(tensor.int32_data(), constant.dtype);
  }
  if (bytes.size() != expected)
    throw Error(context + ": holds " + std::to_string(bytes.size()) + " bytes of data, shape " +
                shape_str(constant.shape) + " needs " + std::to_string(expected));
  constant.bytes = make_bytes(std::move(bytes));
  return constant;
}

AttrValue attribute_value(const ::onnx::AttributeProto& attribute, const std::string& context) {
  switch (attribute.type()) {
    case ::onnx::AttributeProto::INT: return attribute.i();
    case ::onnx::AttributeProto::FLOAT: return attribute.f();
    case ::onnx::AttributeProto::STRING: return attribute.s();
    case ::onnx::AttributeProto::INTS: return std::vector<int64_t>(attribute.ints().begin(), attribute.ints().end());
    case ::onnx::AttributeProto::FLOATS:
      return std::vector<float>(attribute.floats().begin(), attribute.floats().end());
    default: break;
  }
  throw Error(context + ": attribute '" + attribute.name() + "' has type " +
              ::onnx::AttributeProto::AttributeType_Name(attribute.type()) + ", which octet does not accept here");
}

TensorInfo tensor_info_from_value_info(const ::onnx::ValueInfoProto& value, const std::string& context) {
  if (!value.type().has_tensor_type()) throw Error(context + ": is not a tensor");
  const ::onnx::TypeProto::Tensor& type = value.type().tensor_type();
  if (!type.has_shape()) throw Error(context + ": has no shape (octet needs static shapes)");
  TensorInfo info;
  info.dtype = dtype_from_onnx(type.elem_type(), context);
  for (int i = 0; i < type.shape().dim_size(); ++i) {
    const ::onnx::TensorShapeProto::Dimension& dim = type.shape().dim(i);
    if (dim.has_dim_value()) {
      info.shape.push_back(dim.dim_value());
    } else if (i == 0) {
      info.shape.push_back(kBatchDim);
    } else {
      std::string label = dim.has_dim_param() ? " ('" + dim.dim_param() + "')" : "";
      throw Error(context + ": dimension " + std::to_string(i) + label +
                  " is symbolic; octet needs static shapes except for the batch (first) dimension");
    }
  }
  return info;
}

}  // namespace octet::onnx