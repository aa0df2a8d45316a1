// Private to the ONNX importer: ONNX protobuf messages to octet values (tensors, attributes, tensor types).
// Every function takes a `context` ("model.onnx: initializer 'w'") that starts its error messages.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>

#include "graph/graph.h"

namespace octet::onnx {

// Reads and parses a binary protobuf file. Throws naming `path` when it cannot be opened or parsed.
void read_proto_file(const std::string& path, google::protobuf::MessageLite& message, const char* what);

// TensorProto::DataType -> DType (float, int64, int32, int8, uint8; bool as u8); throws for the others.
DType dtype_from_onnx(int32_t data_type, const std::string& context);

// A TensorProto's values, from raw_data or the typed fields. External data is an error.
Constant constant_from_tensor_proto(const ::onnx::TensorProto& tensor, const std::string& context);

// INT -> int64, FLOAT -> float, STRING -> string, INTS -> ints, FLOATS -> floats; other types throw.
AttrValue attribute_value(const ::onnx::AttributeProto& attribute, const std::string& context);

// A graph input's dtype and shape. A symbolic or unknown first dimension becomes kBatchDim; any other
// symbolic dimension is an error, because octet plans memory for static shapes.
TensorInfo tensor_info_from_value_info(const ::onnx::ValueInfoProto& value, const std::string& context);

}  // namespace octet::onnx