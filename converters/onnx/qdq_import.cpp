#include "converters/onnx/qdq_import.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <sstream>

#include "converters/onnx/import.h"
#include "converters/onnx/passes.h"
#include "converters/onnx/proto.h"
#include "graph/quantization.h"

namespace octet::onnx {
namespace {

const std::set<std::string>& qoperator_ops() {
  static const std::set<std::string> ops = {
      "QLinearConv",        "QLinearMatMul", "QLinearAdd",       "QLinearMul",     "QLinearGlobalAveragePool",
      "QLinearAveragePool", "QLinearConcat", "QLinearLeakyRelu", "QLinearSigmoid", "ConvInteger",
      "MatMulInteger"};
  return ops;
}

std::string node_name(const ::onnx::NodeProto& node) {
  return !node.name().empty() ? node.name() : node.output_size() > 0 ? node.output(0) : node.op_type();
}
std::string label(const ::onnx::NodeProto& node) { return "node '" + node_name(node) + "' (" + node.op_type() + ")"; }

std::string str(float v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

::onnx::NodeProto make_node(const std::string& op, const std::string& name, const std::vector<std::string>& inputs,
                            const std::vector<std::string>& outputs) {
  ::onnx::NodeProto n;
  n.set_op_type(op);
  n.set_name(name);
  for (const std::string& i : inputs) n.add_input(i);
  for (const std::string& o : outputs) n.add_output(o);
  return n;
}

void set_int_attribute(::onnx::NodeProto& node, const std::string& name, int64_t value) {
  ::onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto::INT);
  a->set_i(value);
}

// The integer range of an ONNX integer type, full (ONNX saturates QuantizeLinear to it).
IntRange onnx_range(int32_t type) {
  switch (type) {
    case ::onnx::TensorProto::UINT8: return {0, 255};
    case ::onnx::TensorProto::INT8: return {-128, 127};
    case ::onnx::TensorProto::INT32: return {INT32_MIN, INT32_MAX};
    default: return {0, -1};
  }
}

const char* type_name(int32_t type) {
  switch (type) {
    case ::onnx::TensorProto::UINT8: return "uint8";
    case ::onnx::TensorProto::INT8: return "int8";
    case ::onnx::TensorProto::INT32: return "int32";
    case ::onnx::TensorProto::FLOAT: return "float";
    default: return "another type";
  }
}

// A Q/DQ node's parameters, checked.
struct Params {
  int32_t type = ::onnx::TensorProto::UINT8;  // the integer side's type
  std::vector<float> scales;
  std::vector<int32_t> zero_points;
  int64_t axis = -1;  // normalized; -1 per tensor
};

// A constant's element count; throws naming it when a dimension is negative or the count overflows.
int64_t checked_elements(const ::onnx::TensorProto& t, const std::string& what) {
  try {
    return shape_elements(Shape(t.dims().begin(), t.dims().end()));
  } catch (const Error& e) {
    throw Error(what + ": " + e.what());
  }
}

class QuantizedModelRewriter {
 public:
  explicit QuantizedModelRewriter(const ::onnx::ModelProto& model) : model_(model) {
    ::onnx::GraphProto& g = *model_.mutable_graph();
    for (const ::onnx::TensorProto& t : g.initializer()) {
      checked_elements(t, "initializer '" + t.name() + "'");  // the dimensions later counts multiply are sane
      consts_[t.name()] = t;
    }
    for (const ::onnx::NodeProto& n : g.node()) {
      if (n.op_type() == "Constant") {
        for (const ::onnx::AttributeProto& a : n.attribute())
          if (a.name() == "value" && n.output_size() == 1) {
            checked_elements(a.t(), label(n) + ": attribute value");
            consts_[n.output(0)] = a.t();
            consts_[n.output(0)].set_name(n.output(0));
          }
      } else if (n.op_type() == "Identity" && n.input_size() == 1 && n.output_size() == 1 &&
                 consts_.count(n.input(0))) {
        consts_[n.output(0)] = consts_.at(n.input(0));
        consts_[n.output(0)].set_name(n.output(0));
      }
    }
  }

  ::onnx::ModelProto rewrite(GivenQuantization& given, std::string& form) {
    ::onnx::GraphProto& g = *model_.mutable_graph();
    bool qop = false;
    for (const ::onnx::NodeProto& n : g.node()) {
      if (qoperator_ops().count(n.op_type())) {
        qop = true;
        expand_qoperator(n);
      } else {
        if (!n.domain().empty() && n.domain() != "ai.onnx")
          throw Error(label(n) + ": op of domain '" + n.domain() + "' is not one octet imports");
        nodes_.push_back(n);
      }
    }
    form = qop ? "QOperator" : "QDQ";  // QOperator models quantize their input and dequantize their output with Q/DQ
    given.integer_adds = integer_adds_;
    strip(given);
    g.clear_node();
    for (::onnx::NodeProto& n : nodes_) *g.add_node() = std::move(n);
    for (const ::onnx::TensorProto& t : new_initializers_) *g.add_initializer() = t;
    return std::move(model_);
  }

 private:
  // ---- QOperator -> QDQ ----------------------------------------------------------------------------------

  void expand_qoperator(const ::onnx::NodeProto& n) {
    const std::string& op = n.op_type();
    const std::string base = node_name(n);
    if (n.output_size() != 1 || n.output(0).empty()) throw Error(label(n) + ": needs exactly one output");
    auto input = [&](int i) -> std::string {
      if (i >= n.input_size() || n.input(i).empty())
        throw Error(label(n) + ": input " + std::to_string(i) + " is missing");
      return n.input(i);
    };
    auto dq = [&](const std::string& x, const std::string& s, const std::string& z, const std::string& out,
                  int64_t axis) {
      ::onnx::NodeProto d = make_node("DequantizeLinear", out + "/DequantizeLinear", {x, s, z}, {out});
      if (axis >= 0) set_int_attribute(d, "axis", axis);
      nodes_.push_back(d);
    };
    auto q = [&](const std::string& y, const std::string& s, const std::string& z, const std::string& out) {
      nodes_.push_back(make_node("QuantizeLinear", out + "/QuantizeLinear", {y, s, z}, {out}));
    };
    auto copy_attributes = [&](::onnx::NodeProto& to, const std::set<std::string>& skip) {
      for (const ::onnx::AttributeProto& a : n.attribute())
        if (!skip.count(a.name())) *to.add_attribute() = a;
    };
    auto elements = [&](const std::string& name) -> int64_t {
      auto it = consts_.find(name);
      if (it == consts_.end()) throw Error(label(n) + ": '" + name + "' must be a constant (initializer)");
      return checked_elements(it->second, label(n) + ": '" + name + "'");
    };
    if (op == "ConvInteger" || op == "MatMulInteger")
      throw Error(label(n) + ": " + op +
                  " (int32 output rescaled by separate float ops) is not imported; quantize the model "
                  "as QDQ or QOperator (QLinearConv / QLinearMatMul) instead");
    if (op == "QLinearConv") {
      const std::string x = base + "/x", w = base + "/w", y = base + "/y";
      dq(input(0), input(1), input(2), x, -1);
      dq(input(3), input(4), input(5), w, elements(input(4)) > 1 ? 0 : -1);
      std::vector<std::string> conv_inputs = {x, w};
      if (n.input_size() > 8 && !n.input(8).empty()) {
        // The int32 bias is at scale x_scale * w_scale (per channel), zero point 0.
        std::vector<float> xs = scales_of(n, 1), ws = scales_of(n, 4);
        ::onnx::TensorProto s;
        s.set_name(base + "/bias_scale");
        s.set_data_type(::onnx::TensorProto::FLOAT);
        if (ws.size() > 1) s.add_dims(static_cast<int64_t>(ws.size()));
        for (float v : ws) s.add_float_data(xs[0] * v);
        add_initializer(s);
        const std::string b = base + "/b";
        dq(n.input(8), s.name(), "", b, ws.size() > 1 ? 0 : -1);
        conv_inputs.push_back(b);
      }
      ::onnx::NodeProto conv = make_node("Conv", base, conv_inputs, {y});
      copy_attributes(conv, {});
      nodes_.push_back(conv);
      q(y, input(6), input(7), n.output(0));
    } else if (op == "QLinearMatMul") {
      const std::string a = base + "/a", b = base + "/b", y = base + "/y";
      dq(input(0), input(1), input(2), a, -1);
      dq(input(3), input(4), input(5), b, elements(input(4)) > 1 ? 1 : -1);
      nodes_.push_back(make_node("MatMul", base, {a, b}, {y}));
      q(y, input(6), input(7), n.output(0));
    } else if (op == "QLinearAdd" || op == "QLinearMul") {
      const std::string a = base + "/a", b = base + "/b", y = base + "/y";
      dq(input(0), input(1), input(2), a, -1);
      dq(input(3), input(4), input(5), b, -1);
      nodes_.push_back(make_node(op == "QLinearAdd" ? "Add" : "Mul", base, {a, b}, {y}));
      if (op == "QLinearAdd") integer_adds_.insert(base);
      q(y, input(6), input(7), n.output(0));
    } else if (op == "QLinearGlobalAveragePool" || op == "QLinearAveragePool" || op == "QLinearLeakyRelu" ||
               op == "QLinearSigmoid") {
      for (const ::onnx::AttributeProto& a : n.attribute())
        if (a.name() == "channels_last" && a.i() != 0)
          throw Error(label(n) + ": attribute channels_last=1 is not supported");
      const std::string x = base + "/x", y = base + "/y";
      dq(input(0), input(1), input(2), x, -1);
      ::onnx::NodeProto f = make_node(op.substr(7), base, {x}, {y});
      copy_attributes(f, {"channels_last"});
      nodes_.push_back(f);
      q(y, input(3), n.input_size() > 4 ? n.input(4) : "", n.output(0));
    } else if (op == "QLinearConcat") {
      // Inputs: y_scale, y_zero_point, then (x, x_scale, x_zero_point) per input.
      if (n.input_size() < 5 || (n.input_size() - 2) % 3 != 0)
        throw Error(label(n) + ": needs y_scale, y_zero_point and triples (x, scale, zero point)");
      std::vector<std::string> xs;
      for (int i = 2; i < n.input_size(); i += 3) {
        xs.push_back(base + "/x" + std::to_string(i / 3));
        dq(input(i), input(i + 1), input(i + 2), xs.back(), -1);
      }
      const std::string y = base + "/y";
      ::onnx::NodeProto c = make_node("Concat", base, xs, {y});
      copy_attributes(c, {});
      nodes_.push_back(c);
      q(y, input(0), input(1), n.output(0));
    }
  }

  void add_initializer(const ::onnx::TensorProto& t) {
    consts_[t.name()] = t;
    new_initializers_.push_back(t);
  }

  // ---- parameters ----------------------------------------------------------------------------------------

  const ::onnx::TensorProto* constant(const std::string& name) const {
    auto it = consts_.find(name);
    return it == consts_.end() ? nullptr : &it->second;
  }

  std::vector<float> scales_of(const ::onnx::NodeProto& n, int input) const {
    const std::string field = "input " + std::to_string(input) + " (scale)";
    if (n.input_size() <= input || n.input(input).empty()) throw Error(label(n) + ": " + field + " is missing");
    const ::onnx::TensorProto* t = constant(n.input(input));
    if (!t)
      throw Error(label(n) + ": " + field + " '" + n.input(input) +
                  "' is not a constant; octet needs scales at conversion");
    if (t->data_type() != ::onnx::TensorProto::FLOAT)
      throw Error(label(n) + ": " + field + " is " + type_name(t->data_type()) + ", not float");
    std::vector<float> v = constant_from_tensor_proto(*t, label(n) + ": " + field).as_floats();
    if (v.empty()) throw Error(label(n) + ": " + field + " is empty");
    for (size_t i = 0; i < v.size(); ++i)
      if (!std::isfinite(v[i]) || !(v[i] > 0))
        throw Error(label(n) + ": " + field + " value " + (v.size() > 1 ? "[" + std::to_string(i) + "] " : "") +
                    str(v[i]) + " is not finite and > 0");
    return v;
  }

  // Zero points as int32, checked against the range of their type (ONNX stores u8/s8 in int32_data, which
  // can hold anything).
  std::vector<int32_t> zero_points_of(const ::onnx::NodeProto& n, int input, int32_t& type) const {
    const std::string field = "input " + std::to_string(input) + " (zero point)";
    const ::onnx::TensorProto* t = constant(n.input(input));
    if (!t)
      throw Error(label(n) + ": " + field + " '" + n.input(input) +
                  "' is not a constant; octet needs zero points at conversion");
    type = t->data_type();
    IntRange r = onnx_range(type);
    if (r.min > r.max)
      throw Error(label(n) + ": " + field + " is " + type_name(type) + "; expected uint8, int8 or int32");
    std::vector<int32_t> out;
    if (!t->has_raw_data()) {
      for (int i = 0; i < t->int32_data_size(); ++i) {
        int64_t v = t->int32_data(i);
        if (v < r.min || v > r.max)
          throw Error(label(n) + ": " + field + " value " + std::to_string(v) + " is outside the " + type_name(type) +
                      " range [" + std::to_string(r.min) + ", " + std::to_string(r.max) + "]");
        out.push_back(static_cast<int32_t>(v));
      }
      if (!out.empty()) return out;
    }
    Constant c = constant_from_tensor_proto(*t, label(n) + ": " + field);
    for (int64_t i = 0; i < c.elements(); ++i) {
      if (c.dtype == DType::u8)
        out.push_back(c.data<uint8_t>()[i]);
      else if (c.dtype == DType::s8)
        out.push_back(c.data<int8_t>()[i]);
      else
        out.push_back(c.data<int32_t>()[i]);
    }
    return out;
  }

  // `rank`: of the quantized tensor when known (constants), else -1.
  Params params_of(const ::onnx::NodeProto& n, int64_t rank, const std::vector<int64_t>& dims) const {
    Params p;
    p.scales = scales_of(n, 1);
    if (n.input_size() > 2 && !n.input(2).empty()) {
      p.zero_points = zero_points_of(n, 2, p.type);
      if (p.zero_points.size() != p.scales.size())
        throw Error(label(n) + ": input 2 (zero point) has " + std::to_string(p.zero_points.size()) + " values for " +
                    std::to_string(p.scales.size()) + " scales");
    } else {  // no zero point: 0 of the integer input's type (uint8 for QuantizeLinear's output)
      p.zero_points.assign(p.scales.size(), 0);
      const ::onnx::TensorProto* x = n.op_type() == "DequantizeLinear" ? constant(n.input(0)) : nullptr;
      if (x) p.type = x->data_type();
    }
    const ::onnx::TensorProto* scale = constant(n.input(1));
    if (scale->dims_size() > 1) throw Error(label(n) + ": input 1 (scale) must be a scalar or a 1-D vector");
    if (scale->dims_size() == 1) {
      int64_t axis = 1;
      for (const ::onnx::AttributeProto& a : n.attribute())
        if (a.name() == "axis") axis = a.i();
      if (rank >= 0) {
        if (axis < -rank || axis >= rank)
          throw Error(label(n) + ": attribute axis " + std::to_string(axis) + " is out of range for a tensor of rank " +
                      std::to_string(rank));
        if (axis < 0) axis += rank;
        if (dims[static_cast<size_t>(axis)] != static_cast<int64_t>(p.scales.size()))
          throw Error(label(n) + ": input 1 (scale) has " + std::to_string(p.scales.size()) + " values for axis " +
                      std::to_string(axis) + " of size " + std::to_string(dims[static_cast<size_t>(axis)]));
      }
      p.axis = axis;
      if (p.scales.size() == 1 && rank >= 0 && dims[static_cast<size_t>(axis)] != 1) p.axis = -1;
    }
    return p;
  }

  static bool same(const Params& a, const Params& b) {
    return a.type == b.type && a.scales == b.scales && a.zero_points == b.zero_points &&
           (a.scales.size() == 1 || a.axis == b.axis);
  }
  static std::string describe(const Params& p) {
    std::ostringstream s;
    s << type_name(p.type) << " scale " << p.scales[0] << " zero point " << p.zero_points[0];
    if (p.scales.size() > 1) s << " (+" << p.scales.size() - 1 << " more, axis " << p.axis << ")";
    return s.str();
  }

  // ---- Q/DQ stripping ------------------------------------------------------------------------------------

  void strip(GivenQuantization& given) {
    std::map<std::string, size_t> producer;
    std::map<std::string, std::vector<size_t>> readers;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      for (const std::string& o : nodes_[i].output()) producer[o] = i;
      for (const std::string& in : nodes_[i].input()) readers[in].push_back(i);
    }
    std::set<std::string> graph_outputs;
    for (const ::onnx::ValueInfoProto& o : model_.graph().output()) graph_outputs.insert(o.name());
    std::set<size_t> removed;
    std::map<std::string, std::string> rename;
    std::map<size_t, ::onnx::NodeProto> replaced;

    for (size_t i = 0; i < nodes_.size(); ++i) {
      const ::onnx::NodeProto& n = nodes_[i];
      if (n.op_type() == "QuantizeLinear") {
        check_q_input(n);
        const ::onnx::TensorProto* x = constant(n.input(0));
        std::vector<int64_t> dims =
            x ? std::vector<int64_t>(x->dims().begin(), x->dims().end()) : std::vector<int64_t>{};
        params_of(n, x ? static_cast<int64_t>(dims.size()) : -1, dims);  // checked here, so errors name the Q first
        continue;
      }
      if (n.op_type() != "DequantizeLinear") continue;
      if (n.input_size() < 2 || n.output_size() != 1)
        throw Error(label(n) + ": needs inputs x and x_scale and one output");
      const std::string& x = n.input(0);
      const std::string& y = n.output(0);
      if (const ::onnx::TensorProto* t = constant(x)) {
        std::vector<int64_t> dims(t->dims().begin(), t->dims().end());
        Params p = params_of(n, static_cast<int64_t>(dims.size()), dims);
        if (t->data_type() != p.type)
          throw Error(label(n) + ": input 0 '" + x + "' is " + type_name(t->data_type()) + " but its zero point is " +
                      type_name(p.type));
        Constant q = constant_from_tensor_proto(*t, label(n) + ": input 0");
        std::vector<int32_t> ints(static_cast<size_t>(q.elements()));
        for (int64_t e = 0; e < q.elements(); ++e)
          ints[static_cast<size_t>(e)] = q.dtype == DType::u8   ? q.data<uint8_t>()[e]
                                         : q.dtype == DType::s8 ? q.data<int8_t>()[e]
                                                                : q.data<int32_t>()[e];
        record_constant(n, y, dims, ints, p, given, readers);
        removed.insert(i);
        continue;
      }
      auto from = producer.find(x);
      if (from == producer.end() || nodes_[from->second].op_type() != "QuantizeLinear")
        throw Error(label(n) + ": input 0 '" + x + "' is neither an integer constant nor a QuantizeLinear output");
      const ::onnx::NodeProto& qn = nodes_[from->second];
      const std::string& qx = qn.input(0);
      const ::onnx::TensorProto* wt = constant(qx);
      std::vector<int64_t> dims =
          wt ? std::vector<int64_t>(wt->dims().begin(), wt->dims().end()) : std::vector<int64_t>{};
      int64_t rank = wt ? static_cast<int64_t>(dims.size()) : -1;
      Params p = params_of(n, rank, dims), pq = params_of(qn, rank, dims);
      if (!same(p, pq))
        throw Error(label(n) + ": its parameters (" + describe(p) + ") disagree with those of " + label(qn) + " (" +
                    describe(pq) + ")");
      if (wt) {  // QAT: float weights fake-quantized; the integers are Q's
        if (wt->data_type() != ::onnx::TensorProto::FLOAT)
          throw Error(label(qn) + ": input 0 '" + qx + "' is not float");
        std::vector<float> w = constant_from_tensor_proto(*wt, label(qn) + ": input 0").as_floats();
        IntRange r = onnx_range(p.type);
        std::vector<int32_t> ints(w.size());
        int64_t inner = inner_size(dims, p.axis), channels = p.axis >= 0 ? dims[static_cast<size_t>(p.axis)] : 1;
        for (size_t e = 0; e < w.size(); ++e) {
          size_t c = p.axis >= 0 ? static_cast<size_t>((static_cast<int64_t>(e) / inner) % channels) : 0;
          ints[e] = quantize_value(w[e], p.scales[c], p.zero_points[c], r.min, r.max);
        }
        record_constant(n, y, dims, ints, p, given, readers);
        removed.insert(i);
        continue;
      }
      if (p.scales.size() > 1 || p.axis >= 0)
        throw Error(label(n) + ": per-axis quantization of activation '" + qx +
                    "'; octet's INT8 kernels take one scale and zero point per activation tensor");
      if (p.type == ::onnx::TensorProto::INT32)
        throw Error(label(n) + ": int32 activation '" + qx + "' is not supported");
      GivenActivation a{p.type == ::onnx::TensorProto::INT8 ? DType::s8 : DType::u8, {p.scales, p.zero_points, -1}};
      // A pair whose dequantized value nothing reads quantizes nothing (ONNX Runtime's tool leaves one after
      // the last pooling of Darknet-tiny, whose logits stay float).
      if (readers[y].empty() && !graph_outputs.count(y)) {
        removed.insert(i);
        continue;
      }
      record_activation(qx, a, n, given);
      if (graph_outputs.count(y)) {
        replaced[i] = make_node("Identity", node_name(n), {qx}, {y});
        record_activation(y, a, n, given);
      } else {
        rename[y] = qx;
        removed.insert(i);
      }
    }
    // Every QuantizeLinear must feed only DequantizeLinear nodes that were stripped.
    for (size_t i = 0; i < nodes_.size(); ++i) {
      const ::onnx::NodeProto& n = nodes_[i];
      if (n.op_type() != "QuantizeLinear") continue;
      if (graph_outputs.count(n.output(0)))
        throw Error(label(n) + ": output '" + n.output(0) + "' is a graph output; octet's graph outputs are float");
      for (size_t r : readers[n.output(0)])
        if (!removed.count(r) && !replaced.count(r))
          throw Error(label(nodes_[r]) + " reads the integer output of " + label(n) +
                      "; octet runs integer tensors only between QuantizeLinear and DequantizeLinear");
      removed.insert(i);
    }
    std::vector<::onnx::NodeProto> kept;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (removed.count(i)) continue;
      ::onnx::NodeProto n = replaced.count(i) ? replaced.at(i) : nodes_[i];
      for (int k = 0; k < n.input_size(); ++k) {
        auto it = rename.find(n.input(k));
        if (it != rename.end()) n.set_input(k, it->second);
      }
      kept.push_back(std::move(n));
    }
    nodes_ = std::move(kept);
  }

  void check_q_input(const ::onnx::NodeProto& n) const {
    if (n.input_size() < 2 || n.output_size() != 1)
      throw Error(label(n) + ": needs inputs x and y_scale and one output");
  }

  static int64_t inner_size(const std::vector<int64_t>& dims, int64_t axis) {
    int64_t inner = 1;
    if (axis < 0) return 1;
    for (size_t d = static_cast<size_t>(axis) + 1; d < dims.size(); ++d) inner *= dims[d];
    return inner;
  }

  void record_activation(const std::string& tensor, const GivenActivation& a, const ::onnx::NodeProto& n,
                         GivenQuantization& given) {
    auto it = given.activations.find(tensor);
    if (it == given.activations.end()) {
      given.activations[tensor] = a;
    } else if (it->second.dtype != a.dtype || it->second.params.scales != a.params.scales ||
               it->second.params.zero_points != a.params.zero_points) {
      given.notes.push_back(label(n) + ": tensor '" + tensor +
                            "' is quantized twice with different parameters; octet keeps the first (scale " +
                            str(it->second.params.scales[0]) + ")");
    }
  }

  // A dequantized constant: the float values become an initializer named `y`; the integers are recorded as
  // s8 weights (zero point 0) or s32 bias.
  void record_constant(const ::onnx::NodeProto& n, const std::string& y, const std::vector<int64_t>& dims,
                       const std::vector<int32_t>& ints, const Params& p, GivenQuantization& given,
                       std::map<std::string, std::vector<size_t>>& readers) {
    int64_t inner = inner_size(dims, p.axis), channels = p.axis >= 0 ? dims[static_cast<size_t>(p.axis)] : 1;
    auto channel = [&](size_t e) {
      return p.axis >= 0 ? static_cast<size_t>((static_cast<int64_t>(e) / inner) % channels) : 0;
    };
    ::onnx::TensorProto f;
    f.set_name(y);
    f.set_data_type(::onnx::TensorProto::FLOAT);
    for (int64_t d : dims) f.add_dims(d);
    std::vector<int32_t> centred(ints.size());
    for (size_t e = 0; e < ints.size(); ++e) {
      size_t c = channel(e);
      centred[e] = ints[e] - p.zero_points[c];
      f.add_float_data(dequantize_value(ints[e], p.scales[c], p.zero_points[c]));
    }
    add_initializer(f);
    if (p.type == ::onnx::TensorProto::UINT8 || p.type == ::onnx::TensorProto::INT8) {
      std::vector<uint8_t> raw(ints.size());
      for (size_t e = 0; e < ints.size(); ++e) raw[e] = static_cast<uint8_t>(ints[e]);
      given.constants[y] = {
          Constant{p.type == ::onnx::TensorProto::UINT8 ? DType::u8 : DType::s8, dims, make_bytes(std::move(raw))},
          QuantParams{p.scales, p.zero_points, static_cast<int>(p.axis)}};
    }
    QuantParams params{p.scales, std::vector<int32_t>(p.scales.size(), 0), static_cast<int>(p.axis)};
    if (p.type == ::onnx::TensorProto::INT32) {
      std::vector<uint8_t> bytes(centred.size() * 4);
      std::memcpy(bytes.data(), centred.data(), bytes.size());
      given.biases[y] = {Constant{DType::s32, dims, make_bytes(std::move(bytes))}, params};
      return;
    }
    bool fits = true;
    for (int32_t v : centred) fits = fits && v >= -128 && v <= 127;
    if (fits) {
      if (p.type == ::onnx::TensorProto::UINT8 ||
          std::any_of(p.zero_points.begin(), p.zero_points.end(), [](int32_t z) { return z != 0; }))
        ++converted_exactly_;
      std::vector<uint8_t> bytes(centred.size());
      for (size_t e = 0; e < centred.size(); ++e) bytes[e] = static_cast<uint8_t>(static_cast<int8_t>(centred[e]));
      given.weights[y] = {Constant{DType::s8, dims, make_bytes(std::move(bytes))}, params};
      return;
    }
    // Some w - zero point fall outside int8 (u8 weights, zero point far from 128): the weights keep their zero
    // point, stored as s8 (u8 w as w - 128 with zero point zp - 128; s8 as they are), which is the same
    // w - zero point exactly. The kernels compute those integers exactly (kernels/quantized_linear.h: oneDNN
    // runs them clamped to s8, the few output channels beyond s8 are recomputed in int32).
    if (dims.size() < 2) return;  // not weights (a QLinearAdd's constant operand, say): float it stays
    const int32_t shift = p.type == ::onnx::TensorProto::UINT8 ? 128 : 0;
    if (p.type != ::onnx::TensorProto::UINT8 && p.type != ::onnx::TensorProto::INT8)
      throw Error(label(n) + ": weights of type " + type_name(p.type) + " are not supported");
    int64_t axis = 0;
    for (size_t r : readers[y])
      if (nodes_[r].op_type() == "MatMul") axis = 1;
    const int64_t ch = dims[static_cast<size_t>(axis)], in_ch = inner_size(dims, axis);
    std::vector<bool> beyond(static_cast<size_t>(ch), false);
    for (size_t e = 0; e < centred.size(); ++e)
      if (centred[e] < -128 || centred[e] > 127)
        beyond[static_cast<size_t>((static_cast<int64_t>(e) / in_ch) % ch)] = true;
    params.zero_points.clear();
    for (int32_t z : p.zero_points) params.zero_points.push_back(z - shift);
    std::vector<uint8_t> bytes(ints.size());
    for (size_t e = 0; e < ints.size(); ++e) bytes[e] = static_cast<uint8_t>(static_cast<int8_t>(ints[e] - shift));
    given.notes.push_back(label(n) + ": " + type_name(p.type) + " weights minus zero point reach beyond int8 in " +
                          std::to_string(std::count(beyond.begin(), beyond.end(), true)) + " of " + std::to_string(ch) +
                          " output channels: kept with their zero point and computed exactly (those channels "
                          "recomputed in int32 after oneDNN's s8 convolution)");
    given.weights[y] = {Constant{DType::s8, dims, make_bytes(std::move(bytes))}, params};
  }

 public:
  // Weight tensors with zero points (or u8) that became s8 w - zero point exactly.
  size_t converted_exactly() const { return converted_exactly_; }

 private:
  size_t converted_exactly_ = 0;
  ::onnx::ModelProto model_;
  std::map<std::string, ::onnx::TensorProto> consts_;
  std::vector<::onnx::NodeProto> nodes_;
  std::vector<::onnx::TensorProto> new_initializers_;
  std::set<std::string> integer_adds_;
};

}  // namespace

bool is_quantized_onnx(const ::onnx::ModelProto& model) {
  for (const ::onnx::NodeProto& n : model.graph().node())
    if (n.op_type() == "QuantizeLinear" || n.op_type() == "DequantizeLinear" || qoperator_ops().count(n.op_type()))
      return true;
  return false;
}

bool is_quantized_onnx_file(const std::string& path) {
  ::onnx::ModelProto model;
  read_proto_file(path, model, "ONNX model");
  return is_quantized_onnx(model);
}

void matmul_to_gemm(Graph& graph, const std::function<bool(const Node& add)>& keep_add) {
  std::map<std::string, std::vector<size_t>> consumers = graph.consumers();
  std::set<std::string> outputs(graph.outputs.begin(), graph.outputs.end());
  std::set<size_t> removed;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& node = graph.nodes[i];
    if (node.op != "MatMul" || !graph.is_constant(node.inputs[1]) || graph.is_constant(node.inputs[0])) continue;
    const Constant& b = graph.constants.at(node.inputs[1]);
    auto a = graph.tensors.find(node.inputs[0]);
    if (b.shape.size() != 2 || a == graph.tensors.end() || a->second.shape.size() != 2) continue;
    node.op = "Gemm";
    node.attrs = {};
    // Its bias: an Add of a constant of N values that alone reads the product.
    auto readers = consumers.find(node.outputs[0]);
    if (outputs.count(node.outputs[0]) || readers == consumers.end() || readers->second.size() != 1) continue;
    Node& add = graph.nodes[readers->second[0]];
    if (add.op != "Add" || add.inputs.size() != 2 || (keep_add && keep_add(add))) continue;
    const std::string& other = add.inputs[0] == node.outputs[0] ? add.inputs[1] : add.inputs[0];
    const Constant* c = graph.find_constant(other);
    if (!c || c->dtype != DType::f32 || c->elements() != b.shape[1] || c->shape.size() > 2 ||
        (c->shape.size() == 2 && c->shape[0] != 1))
      continue;
    std::string bias = node.name + "/bias";
    Constant flat = *c;
    flat.shape = {c->elements()};
    graph.constants[bias] = flat;
    node.inputs.push_back(bias);
    graph.tensors.erase(node.outputs[0]);
    node.outputs[0] = add.outputs[0];
    removed.insert(readers->second[0]);
  }
  std::vector<Node> kept;
  for (size_t i = 0; i < graph.nodes.size(); ++i)
    if (!removed.count(i)) kept.push_back(std::move(graph.nodes[i]));
  graph.nodes = std::move(kept);
}

QuantizedOnnx read_quantized_onnx_model(const ::onnx::ModelProto& model) {
  QuantizedOnnx q;
  QuantizedModelRewriter rewriter(model);
  ::onnx::ModelProto float_model = rewriter.rewrite(q.given, q.form);
  if (rewriter.converted_exactly())
    q.given.notes.push_back(std::to_string(rewriter.converted_exactly()) +
                            " weight tensors with zero points became s8 (w - zero point) exactly");
  ImportOptions import;
  import.fuse = false;
  q.fp32 = import_onnx_model(float_model, import);
  fuse_conv_activation(q.fp32);
  // The pool moves before a pointwise Conv only where the model left the Conv in float (float weights, output
  // not quantized; e.g. an ONNX Runtime QDQ model's FP32 classifier): a quantized Conv's output saturates to
  // its integer range (QOperator models have no explicit ReLU/ReLU6, the clamp to [0, 255] at zero point 0 is
  // it), so the pool does not commute with it, and a quantized Conv must keep its given input.
  auto given = [&](const std::string& tensor) { return q.given.activations.count(tensor) != 0; };
  pool_before_pointwise_conv(q.fp32, [&](const Node& conv, const Node& pool) {
    return !q.given.weights.count(conv.inputs[1]) && !given(conv.outputs[0]) && !given(pool.outputs[0]);
  });
  // A Conv whose output the model rounds to integers before a residual Add (QOperator's QLinearConv ->
  // QLinearAdd, QDQ with a Q/DQ pair between them) keeps that rounding: the Add then runs on the rounded values.
  fuse_conv_sum(q.fp32, [&](const Node& conv) { return !q.given.activations.count(conv.outputs[0]); });
  eliminate_dead_code(q.fp32);
  // ONNX Runtime rounds a QLinearMatMul's product to integers before the QLinearAdd of the bias.
  matmul_to_gemm(q.fp32, [&](const Node& add) { return q.given.integer_adds.count(add.name) > 0; });
  return q;
}

QuantizedOnnx read_quantized_onnx(const std::string& path) {
  ::onnx::ModelProto model;
  read_proto_file(path, model, "ONNX model");
  try {
    return read_quantized_onnx_model(model);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

}  // namespace octet::onnx
