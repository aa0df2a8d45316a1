// ONNX models built in memory with ONNX's protobuf classes, for tests and fuzz seeds that make their own
// models (nothing binary is committed). Link onnx_proto and protobuf.
#pragma once

#include "tests/support/onnx_pb.h"

#include <cstdint>
#include <string>
#include <vector>

namespace octet::testing {

struct OnnxBuilder {
  ::onnx::ModelProto model;
  ::onnx::GraphProto* graph;

  explicit OnnxBuilder(int64_t opset = 13) {
    model.set_ir_version(7);
    ::onnx::OperatorSetIdProto* id = model.add_opset_import();
    id->set_domain("");
    id->set_version(opset);
    graph = model.mutable_graph();
    graph->set_name("built");
  }
  // An input (float unless `elem_type` says otherwise); a dimension < 0 becomes the symbolic "N".
  void input(const std::string& name, const std::vector<int64_t>& shape,
             int32_t elem_type = ::onnx::TensorProto::FLOAT) {
    ::onnx::ValueInfoProto* value = graph->add_input();
    value->set_name(name);
    ::onnx::TypeProto::Tensor* type = value->mutable_type()->mutable_tensor_type();
    type->set_elem_type(elem_type);
    ::onnx::TensorShapeProto* dims = type->mutable_shape();
    for (int64_t d : shape) {
      if (d < 0)
        dims->add_dim()->set_dim_param("N");
      else
        dims->add_dim()->set_dim_value(d);
    }
  }
  void output(const std::string& name) { graph->add_output()->set_name(name); }
  // An initializer with its name and shape; the caller sets its type and values.
  ::onnx::TensorProto& initializer(const std::string& name, const std::vector<int64_t>& shape) {
    ::onnx::TensorProto* t = graph->add_initializer();
    t->set_name(name);
    for (int64_t d : shape) t->add_dims(d);
    return *t;
  }
  // `count` float values, all `value` unless `ramp` (then (i % 7 - 3) / 8).
  ::onnx::TensorProto& floats(const std::string& name, const std::vector<int64_t>& shape, size_t count,
                              float value = 0.5f, bool ramp = false) {
    ::onnx::TensorProto* t = &initializer(name, shape);
    t->set_data_type(::onnx::TensorProto::FLOAT);
    for (size_t i = 0; i < count; ++i) t->add_float_data(ramp ? float(int(i % 7) - 3) * 0.125f : value);
    return *t;
  }
  // The given float values, stored as raw_data (the form exporters write).
  ::onnx::TensorProto& values(const std::string& name, const std::vector<int64_t>& shape,
                              const std::vector<float>& values) {
    ::onnx::TensorProto* t = &initializer(name, shape);
    t->set_data_type(::onnx::TensorProto::FLOAT);
    t->set_raw_data(values.data(), values.size() * sizeof(float));
    return *t;
  }
  ::onnx::TensorProto& ints(const std::string& name, const std::vector<int64_t>& shape,
                            const std::vector<int64_t>& values) {
    ::onnx::TensorProto* t = &initializer(name, shape);
    t->set_data_type(::onnx::TensorProto::INT64);
    for (int64_t v : values) t->add_int64_data(v);
    return *t;
  }
  // Integers of another type (INT8, UINT8, INT32), stored in int32_data as ONNX does.
  ::onnx::TensorProto& small_ints(const std::string& name, int32_t data_type, const std::vector<int64_t>& shape,
                                  const std::vector<int32_t>& values) {
    ::onnx::TensorProto* t = &initializer(name, shape);
    t->set_data_type(data_type);
    for (int32_t v : values) t->add_int32_data(v);
    return *t;
  }
  ::onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs,
                          const std::vector<std::string>& outputs, const std::string& name = "") {
    ::onnx::NodeProto* n = graph->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const std::string& i : inputs) n->add_input(i);
    for (const std::string& o : outputs) n->add_output(o);
    return *n;
  }
  static void attribute(::onnx::NodeProto& node, const std::string& name, const std::vector<int64_t>& values) {
    ::onnx::AttributeProto* a = node.add_attribute();
    a->set_name(name);
    a->set_type(::onnx::AttributeProto::INTS);
    for (int64_t v : values) a->add_ints(v);
  }
  static void attribute(::onnx::NodeProto& node, const std::string& name, int64_t value) {
    ::onnx::AttributeProto* a = node.add_attribute();
    a->set_name(name);
    a->set_type(::onnx::AttributeProto::INT);
    a->set_i(value);
  }
  static void attribute(::onnx::NodeProto& node, const std::string& name, float value) {
    ::onnx::AttributeProto* a = node.add_attribute();
    a->set_name(name);
    a->set_type(::onnx::AttributeProto::FLOAT);
    a->set_f(value);
  }
  std::string bytes() const { return model.SerializeAsString(); }
};

}  // namespace octet::testing
