#include "graph/model_format.h"

#include <algorithm>
#include <cerrno>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <tuple>
#include <type_traits>
#include <variant>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "graph/ops.h"
#include "graph/shape_inference.h"

namespace octet {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;
using Keys = std::initializer_list<const char*>;
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
// Scale bounds (graph/FORMAT.md): u8/s8 tensors, and s32 ones (biases at input scale x weight scale).
constexpr float kMinScale = 1e-30f, kMaxScale = 1e10f, kMinS32Scale = 1e-30f, kMaxS32Scale = 1e20f;
constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();

// ---- Field paths and error reporting, shared by the reader and the writer's pre-write check ----------------

// Quotes a name as JSON does, so paths read constants["conv1.weight"] whatever the name holds.
std::string quote_name(const std::string& s) { return json(s).dump(-1, ' ', false, json::error_handler_t::replace); }
std::string entry_path(const std::string& base, const std::string& key) { return base + "[" + quote_name(key) + "]"; }
std::string index_path(const std::string& base, size_t i) { return base + "[" + std::to_string(i) + "]"; }
std::string number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// Prefixes every error with the file being read (or the model being written) and the field path.
class Reporter {
 public:
  explicit Reporter(std::string context) : context_(std::move(context)) {}
  const std::string& context() const { return context_; }
  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    throw Error(context_ + ": " + (path.empty() ? "" : path + ": ") + what);
  }
  // Runs a check from elsewhere in graph/ (which names the node, not the file) and adds the file to its error.
  template <typename Check>
  auto in_context(Check check) const {
    try {
      return check();
    } catch (const Error& e) {
      throw Error(context_ + ": " + e.what());
    }
  }

 private:
  std::string context_;
};

int64_t align_up(int64_t n) { return (n + kBlobAlignment - 1) / kBlobAlignment * kBlobAlignment; }

// Rejects negative dimensions (but the batch dimension where allowed) and tensors above the size limit.
int64_t check_shape(const Reporter& r, const Shape& shape, DType dtype, bool allow_batch, const std::string& path) {
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i] < 0 && !(allow_batch && shape[i] == kBatchDim))
      r.fail(index_path(path, i), std::to_string(shape[i]) + " is negative");
  int64_t bytes = capped_tensor_bytes(shape, dtype);
  if (bytes < 0)
    r.fail(path, shape_str(shape) + " of " + dtype_name(dtype) + " is larger than the limit of " +
                     std::to_string(kMaxTensorBytes) + " bytes");
  return bytes;
}

void check_quant(const Reporter& r, const QuantParams& q, DType dtype, const Shape& shape, const std::string& path) {
  if (!q.present()) {
    if (!q.zero_points.empty() || q.axis != -1) r.fail(path, "has zero points or an axis but no scales");
    return;
  }
  size_t count = 1;
  std::string rule = "per-tensor quantization needs 1";
  if (q.axis != -1) {
    if (q.axis < 0 || q.axis >= static_cast<int64_t>(shape.size()))
      r.fail(path + ".axis", std::to_string(q.axis) + " is not -1 (per tensor) or a dimension of " + shape_str(shape));
    if (shape[q.axis] == kBatchDim) r.fail(path + ".axis", "per-channel quantization along the batch dimension N");
    count = static_cast<size_t>(shape[q.axis]);
    rule = "per-channel quantization along axis " + std::to_string(q.axis) + " of " + shape_str(shape) + " needs " +
           std::to_string(count);
  }
  if (q.scales.size() != count) r.fail(path + ".scales", std::to_string(q.scales.size()) + " values, " + rule);
  if (q.zero_points.size() != count)
    r.fail(path + ".zero_points", std::to_string(q.zero_points.size()) + " values, " + rule);
  // Sane bounds, not just finite and positive: the kernels multiply and divide scales (input x weight /
  // output), and a weight scale of 1e38 made every logit inf and classify print NaN probabilities. The upper
  // bound keeps dequantized values finite; the lower one admits the ~1e-14 weight scales that external QDQ
  // models give dead channels.
  const bool is_s32 = dtype == DType::s32;
  const float low = is_s32 ? kMinS32Scale : kMinScale, high = is_s32 ? kMaxS32Scale : kMaxScale;
  for (size_t i = 0; i < count; ++i) {
    if (!(std::isfinite(q.scales[i]) && q.scales[i] > 0))
      r.fail(index_path(path + ".scales", i), number(q.scales[i]) + " is not a positive finite number");
    if (!(q.scales[i] >= low && q.scales[i] <= high))
      r.fail(index_path(path + ".scales", i), number(q.scales[i]) + " is outside the sane range [" + number(low) +
                                                  ", " + number(high) + "] for " + dtype_name(dtype));
  }
  int64_t lo = dtype == DType::u8 ? 0 : dtype == DType::s8 ? -128 : INT32_MIN;
  int64_t hi = dtype == DType::u8 ? 255 : dtype == DType::s8 ? 127 : INT32_MAX;
  for (size_t i = 0; i < count; ++i)
    if (q.zero_points[i] < lo || q.zero_points[i] > hi)
      r.fail(index_path(path + ".zero_points", i), std::to_string(q.zero_points[i]) + " is outside the " +
                                                       dtype_name(dtype) + " range [" + std::to_string(lo) + ", " +
                                                       std::to_string(hi) + "]");
}

void check_preprocess(const Reporter& r, const Preprocess& p) {
  auto positive = [&](int value, const char* field) {
    if (value <= 0) r.fail(std::string("preprocess.") + field, std::to_string(value) + " is not positive");
  };
  if (p.resize_shorter < 0) r.fail("preprocess.resize_shorter", std::to_string(p.resize_shorter) + " is negative");
  positive(p.crop_height, "crop[0]");
  positive(p.crop_width, "crop[1]");
  if (!(std::isfinite(p.scale) && p.scale > 0))
    r.fail("preprocess.scale", number(p.scale) + " is not a positive finite number");
  for (size_t c = 0; c < 3; ++c) {
    if (!std::isfinite(p.mean[c])) r.fail(index_path("preprocess.mean", c), number(p.mean[c]) + " is not finite");
    if (!(std::isfinite(p.std[c]) && p.std[c] != 0))
      r.fail(index_path("preprocess.std", c), number(p.std[c]) + " is not a finite nonzero number");
  }
}

bool all_finite(const AttrValue& value) {
  if (const float* f = std::get_if<float>(&value)) return std::isfinite(*f);
  if (const auto* fs = std::get_if<std::vector<float>>(&value))
    return std::all_of(fs->begin(), fs->end(), [](float f) { return std::isfinite(f); });
  return true;
}

// Pooling on u8/s8: an average keeps its input's dtype and quantization; a MaxPool may requantize to u8/s8
// with other parameters, one scale and zero point on each side (the kernel's table maps one integer to one).
void check_pool_quantization(const Graph& g, const Node& node, const Reporter& r) {
  if (node.op != "MaxPool" && node.op != "AveragePool" && node.op != "GlobalAveragePool") return;
  if (node.inputs.empty() || node.outputs.empty()) return;  // validate_graph reports the arity
  auto x = g.tensors.find(node.inputs[0]), y = g.tensors.find(node.outputs[0]);
  if (x == g.tensors.end() || y == g.tensors.end()) return;  // reported as dangling or undescribed
  const TensorInfo &in = x->second, &out = y->second;
  auto integer = [](DType d) { return d == DType::u8 || d == DType::s8; };
  if (!integer(in.dtype)) return;
  if (in.dtype == out.dtype && in.quant == out.quant) return;
  if (node.op != "MaxPool")
    r.fail(node_label(node), "output '" + node.outputs[0] + "' is not quantized as input '" + node.inputs[0] + "' (" +
                                 dtype_name(in.dtype) + "); only a MaxPool requantizes");
  if (!integer(out.dtype) || !in.quant.per_tensor() || !out.quant.per_tensor())
    r.fail(node_label(node), "a MaxPool from " + std::string(dtype_name(in.dtype)) + " input '" + node.inputs[0] +
                                 "' to output '" + node.outputs[0] + "' of dtype " + dtype_name(out.dtype) +
                                 " with other quantization requantizes, which needs u8/s8 output and per-tensor "
                                 "quantization (one scale, one zero point) on both");
}

// Everything read_model checks that can be said of a Graph; run on every graph read and before every write.
void check_model(const Graph& g, const Reporter& r) {
  for (const auto& [name, info] : g.tensors) {
    const Constant* constant = g.find_constant(name);
    // A constant's tensors entry only carries its quantization, stored under constants[name].quant.
    std::string path = entry_path(constant ? "constants" : "tensors", name);
    if (name.empty()) r.fail(path, "a tensor name may not be empty");
    if (constant && (constant->dtype != info.dtype || constant->shape != info.shape))
      r.fail(path, std::string("its tensors entry says ") + dtype_name(info.dtype) + " " + shape_str(info.shape) +
                       ", the constant is " + dtype_name(constant->dtype) + " " + shape_str(constant->shape));
    check_shape(r, info.shape, info.dtype, !constant, path + ".shape");
    check_quant(r, info.quant, info.dtype, info.shape, path + ".quant");
  }
  for (const auto& [name, constant] : g.constants) {
    std::string path = entry_path("constants", name);
    if (name.empty()) r.fail(path, "a constant name may not be empty");
    int64_t bytes = check_shape(r, constant.shape, constant.dtype, false, path + ".shape");
    if (!constant.bytes) r.fail(path, "has no bytes");
    if (constant.bytes->size() != static_cast<size_t>(bytes))
      r.fail(path, "holds " + std::to_string(constant.bytes->size()) + " bytes, shape " + shape_str(constant.shape) +
                       " of " + dtype_name(constant.dtype) + " needs " + std::to_string(bytes));
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& node = g.nodes[i];
    if (node.name.empty()) r.fail(index_path("nodes", i), "a node name may not be empty");
    for (const auto& [attr, value] : node.attrs.values)
      if (!all_finite(value))
        r.fail(node_label(node),
               "attribute '" + attr + "' holds a non-finite float; model.json stores only finite floats");
  }
  if (g.preprocess.present) check_preprocess(r, g.preprocess);
  for (const Node& node : g.nodes) check_pool_quantization(g, node, r);

  r.in_context([&] { validate_graph(g); });
  std::set<std::string> described(g.inputs.begin(), g.inputs.end());
  for (const Node& node : g.nodes)
    for (const std::string& out : node.outputs) {
      if (!g.tensors.count(out)) r.fail(node_label(node), "output '" + out + "' has no entry in tensors");
      described.insert(out);
    }
  for (const auto& entry : g.tensors)
    if (!described.count(entry.first) && !g.is_constant(entry.first))
      r.fail(entry_path("tensors", entry.first), "is neither a graph input nor a node output");

  // Shape errors surface at load, not at the first run. A stored N marks a dimension that follows the batch.
  auto inferred = r.in_context([&] { return infer_shapes(g, 1); });
  for (const Node& node : g.nodes)
    for (const std::string& out : node.outputs) {
      const TensorInfo& at_one = inferred.at(out);
      check_shape(r, at_one.shape, at_one.dtype, false, node_label(node) + ": inferred shape of output '" + out + "'");
      const Shape& stored = g.tensors.at(out).shape;
      bool same = stored.size() == at_one.shape.size();
      for (size_t d = 0; same && d < stored.size(); ++d) same = stored[d] == kBatchDim || stored[d] == at_one.shape[d];
      if (!same)
        r.fail(entry_path("tensors", out) + ".shape", shape_str(stored) + " does not match " + shape_str(at_one.shape) +
                                                          ", inferred at batch 1 from " + node_label(node));
    }
}

// ---- Reading ------------------------------------------------------------------------------------------------

// A JSON value and its path in model.json, e.g. constants["conv1.weight"].offset.
struct Field {
  const json& value;
  std::string path;
  Field operator[](const char* key) const { return {value.at(key), path.empty() ? key : path + "." + key}; }
  Field element(size_t i) const { return {value.at(i), index_path(path, i)}; }
  Field entry(const std::string& key) const { return {value.at(key), entry_path(path, key)}; }
};

// What a value is, for "expected X, got Y": scalars are shown, containers named.
std::string describe(const json& v) {
  if (v.is_object()) return "an object";
  if (v.is_array()) return "an array";
  std::string text = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return text.size() > 40 ? text.substr(0, 37) + "..." : text;
}

struct BinaryView {
  const uint8_t* data;
  size_t size;
};

class ModelParser {
 public:
  // `binary` holds model.bin's bytes. With a `mapping` (read_model maps the file) constants become views
  // into it; without one (parse_model) each constant gets a copy of its bytes.
  ModelParser(const std::string& source, BinaryView binary, std::shared_ptr<const void> mapping)
      : r_(source),
        binary_(binary),
        mapping_(std::move(mapping)),
        binary_name_((fs::path(source).parent_path() / "model.bin").string()) {}

  Graph parse(const std::string& text) const {
    json doc = parse_json(text);
    Field root{doc, ""};
    expect(root, doc.is_object(), "an object");
    // format and version come first: a newer file may hold keys this reader does not know.
    for (const char* key : {"format", "version"})
      if (!doc.contains(key)) r_.fail("", std::string("missing required key \"") + key + "\" (not an octet model?)");
    if (string(root["format"]) != kFormatName) r_.fail("format", describe(doc["format"]) + " is not \"octet\"");
    int64_t version = integer(root["version"], kInt64Min, kInt64Max);
    if (version > kFormatVersion)
      throw Error(r_.context() + " has format version " + std::to_string(version) + ", this octet reads version " +
                  std::to_string(kFormatVersion) + ": regenerate the model with this octet's octet-convert");
    if (version < 1)
      r_.fail("version", std::to_string(version) + " is not a valid format version (versions start at 1)");
    object(root, {"format", "version", "name", "inputs", "outputs", "tensors", "constants", "nodes"},
           {"preprocess", "labels"});

    Graph g;
    g.name = string(root["name"]);
    read_tensors(root["tensors"], g);
    read_constants(root["constants"], g);
    read_inputs(root["inputs"], g);
    g.outputs = strings(root["outputs"]);
    g.nodes = list(root["nodes"], [&](const Field& f) { return node(f); });
    if (doc.contains("preprocess")) g.preprocess = preprocess(root["preprocess"]);
    if (doc.contains("labels")) g.labels = strings(root["labels"]);
    check_model(g, r_);
    return g;
  }

 private:
  json parse_json(const std::string& text) const {
    // nlohmann keeps one of two repeated keys silently; two "conv1.weight" entries are ambiguous, so refuse them.
    std::vector<std::set<std::string>> open_objects;
    auto refuse_repeated_keys = [&](int, json::parse_event_t event, json& parsed) {
      if (event == json::parse_event_t::object_start) open_objects.emplace_back();
      if (event == json::parse_event_t::object_end) open_objects.pop_back();
      if (event == json::parse_event_t::key && !open_objects.back().insert(parsed.get<std::string>()).second)
        r_.fail("", "invalid JSON: key " + describe(parsed) + " appears twice in one object");
      return true;
    };
    try {
      return json::parse(text, refuse_repeated_keys);
    } catch (const json::exception& e) {
      // parse_error ("[json.exception.parse_error.101] parse error at line 3, column 5: ..."), and also
      // out_of_range for a number no double holds ("1e999"): both are malformed JSON to the user.
      std::string what = e.what();
      r_.fail("", "invalid JSON: " + what.substr(what.find(']') + 2));
    }
  }

  // ---- JSON types ----
  void expect(const Field& f, bool ok, const char* expected) const {
    if (!ok) r_.fail(f.path, std::string("expected ") + expected + ", got " + describe(f.value));
  }

  // An object holding every key of `required` and no key outside `required` and `optional`.
  void object(const Field& f, Keys required, Keys optional = {}) const {
    expect(f, f.value.is_object(), "an object");
    for (const char* key : required)
      if (!f.value.contains(key)) r_.fail(f.path, std::string("missing required key \"") + key + "\"");
    auto known = [&](const std::string& key, Keys keys) {
      return std::any_of(keys.begin(), keys.end(), [&](const char* k) { return key == k; });
    };
    for (const auto& item : f.value.items())
      if (!known(item.key(), required) && !known(item.key(), optional)) {
        std::string expected;
        for (Keys keys : {required, optional})
          for (const char* k : keys) expected += (expected.empty() ? "" : ", ") + std::string(k);
        r_.fail(f.path, "unknown key " + quote_name(item.key()) + " (expected " + expected + ")");
      }
  }

  std::string string(const Field& f) const {
    expect(f, f.value.is_string(), "a string");
    return f.value.get<std::string>();
  }

  // A name of the preprocessing vocabulary (octet/preprocess.h).
  template <typename E>
  E vocabulary(const Field& f) const {
    const std::string name = string(f);
    const std::optional<E> value = parse_preprocess_name<E>(name);
    if (!value) r_.fail(f.path, quote_name(name) + " is not " + preprocess_names<E>());
    return *value;
  }

  int64_t integer(const Field& f, int64_t lo, int64_t hi) const {
    expect(f, f.value.is_number_integer(), "an integer");
    if (f.value.is_number_unsigned() && f.value.get<uint64_t>() > static_cast<uint64_t>(kInt64Max))
      r_.fail(f.path, f.value.dump() + " is above the maximum " + std::to_string(hi));
    int64_t v = f.value.get<int64_t>();
    if (v < lo) r_.fail(f.path, std::to_string(v) + " is below the minimum " + std::to_string(lo));
    if (v > hi) r_.fail(f.path, std::to_string(v) + " is above the maximum " + std::to_string(hi));
    return v;
  }

  float real(const Field& f) const {
    expect(f, f.value.is_number(), "a number");
    double v = f.value.get<double>();
    if (std::fabs(v) > FLT_MAX) r_.fail(f.path, f.value.dump() + " is outside the f32 range");
    return static_cast<float>(v);
  }

  template <typename Read>
  auto list(const Field& f, Read read) const -> std::vector<decltype(read(f))> {
    expect(f, f.value.is_array(), "an array");
    std::vector<decltype(read(f))> values;
    values.reserve(f.value.size());
    for (size_t i = 0; i < f.value.size(); ++i) values.push_back(read(f.element(i)));
    return values;
  }
  std::vector<std::string> strings(const Field& f) const {
    return list(f, [&](const Field& e) { return string(e); });
  }
  std::vector<float> reals(const Field& f) const {
    return list(f, [&](const Field& e) { return real(e); });
  }
  std::vector<int64_t> integers(const Field& f, int64_t lo, int64_t hi) const {
    return list(f, [&](const Field& e) { return integer(e, lo, hi); });
  }
  template <typename T>
  std::vector<T> sized(std::vector<T> values, const Field& f, size_t count) const {
    if (values.size() != count)
      r_.fail(f.path, "has " + std::to_string(values.size()) + " values, expected " + std::to_string(count));
    return values;
  }

  // ---- model pieces ----
  DType dtype(const Field& f) const { return parse_dtype(string(f), r_.context() + ": " + f.path); }

  Shape shape(const Field& f, DType type, bool allow_batch) const {
    Shape s =
        list(f, [&](const Field& d) { return allow_batch && d.value == "N" ? kBatchDim : integer(d, 0, kInt64Max); });
    check_shape(r_, s, type, allow_batch, f.path);
    return s;
  }

  QuantParams quant(const Field& f) const {
    object(f, {"scales", "zero_points", "axis"});
    QuantParams q;
    q.scales = reals(f["scales"]);
    for (int64_t zp : integers(f["zero_points"], INT32_MIN, INT32_MAX))
      q.zero_points.push_back(static_cast<int32_t>(zp));
    q.axis = static_cast<int>(integer(f["axis"], -1, INT32_MAX));
    return q;
  }

  void read_tensors(const Field& f, Graph& g) const {
    expect(f, f.value.is_object(), "an object");
    for (const auto& item : f.value.items()) {
      Field t = f.entry(item.key());
      object(t, {"dtype", "shape"}, {"quant"});
      TensorInfo& info = g.tensors[item.key()];
      info.dtype = dtype(t["dtype"]);
      info.shape = shape(t["shape"], info.dtype, true);
      if (t.value.contains("quant")) info.quant = quant(t["quant"]);
    }
  }

  struct Blob {
    std::string name;
    int64_t offset, bytes;
  };

  void read_constants(const Field& f, Graph& g) const {
    expect(f, f.value.is_object(), "an object");
    std::vector<Blob> blobs;
    for (const auto& item : f.value.items()) {
      const std::string& name = item.key();
      Field c = f.entry(name);
      object(c, {"dtype", "shape", "offset", "bytes"}, {"quant"});
      if (g.tensors.count(name))
        r_.fail(c.path, "is also listed in tensors (a constant's quantization goes in its quant)");
      Constant& constant = g.constants[name];
      constant.dtype = dtype(c["dtype"]);
      constant.shape = shape(c["shape"], constant.dtype, false);
      int64_t offset = integer(c["offset"], 0, kInt64Max), bytes = integer(c["bytes"], 0, kInt64Max);
      if (bytes > kInt64Max - offset)
        r_.fail(c.path,
                "offset " + std::to_string(offset) + " + bytes " + std::to_string(bytes) + " overflows 64 bits");
      if (offset + bytes > static_cast<int64_t>(binary_.size))
        r_.fail(c.path, "bytes [" + std::to_string(offset) + ", " + std::to_string(offset + bytes) +
                            ") extend past the end of " + binary_name_ + " (" + std::to_string(binary_.size) +
                            " bytes): truncated file");
      int64_t expected = capped_tensor_bytes(constant.shape, constant.dtype);
      if (bytes != expected)
        r_.fail(c["bytes"].path, std::to_string(bytes) + " does not match shape " + shape_str(constant.shape) + " of " +
                                     dtype_name(constant.dtype) + " (" + std::to_string(expected) + " bytes)");
      if (offset % kBlobAlignment != 0)
        r_.fail(c["offset"].path, std::to_string(offset) + " is not a multiple of " + std::to_string(kBlobAlignment));
      if (c.value.contains("quant")) g.tensors[name] = TensorInfo{constant.dtype, constant.shape, quant(c["quant"])};
      blobs.push_back({name, offset, bytes});
    }
    check_layout(blobs);
    // Made only now: before the layout check, many constants could name the same large range.
    for (const Blob& b : blobs) {
      const uint8_t* begin = binary_.data + b.offset;
      g.constants[b.name].bytes =
          mapping_ ? std::make_shared<const ConstantBytes>(mapping_, begin, static_cast<size_t>(b.bytes))
                   : make_bytes(std::vector<uint8_t>(begin, begin + b.bytes));
    }
  }

  // In offset order each blob starts at the running aligned size; the file ends at the final one.
  void check_layout(std::vector<Blob> blobs) const {
    // Zero-byte blobs sort before a blob at the same offset, so they never look like overlaps.
    std::sort(blobs.begin(), blobs.end(), [](const Blob& a, const Blob& b) {
      return std::tie(a.offset, a.bytes, a.name) < std::tie(b.offset, b.bytes, b.name);
    });
    int64_t running = 0;
    for (size_t i = 0; i < blobs.size(); ++i) {
      const Blob& b = blobs[i];
      std::string path = entry_path("constants", b.name) + ".offset";
      if (b.offset < running) {  // the previous blob, which starts at or before this one, ends after it starts
        const Blob& previous = blobs[i - 1];
        r_.fail(path, std::to_string(b.offset) + " overlaps " + entry_path("constants", previous.name) + " (bytes [" +
                          std::to_string(previous.offset) + ", " + std::to_string(previous.offset + previous.bytes) +
                          "))");
      }
      if (b.offset > running)
        r_.fail(path, std::to_string(b.offset) + " is not the running aligned size " + std::to_string(running) +
                          " (blobs are packed in offset order, each at the next multiple of 64)");
      running = align_up(b.offset + b.bytes);
    }
    int64_t size = static_cast<int64_t>(binary_.size);
    if (size < running)
      throw Error(binary_name_ + ": " + std::to_string(size) + " bytes, but the constants end at " +
                  std::to_string(running) + " (padded to a multiple of 64): truncated file");
    if (size > running)
      throw Error(binary_name_ + ": " + std::to_string(size - running) +
                  " trailing bytes after the constants, which end at " + std::to_string(running));
  }

  void read_inputs(const Field& f, Graph& g) const {
    g.inputs = list(f, [&](const Field& in) {
      object(in, {"name", "dtype", "shape"});
      std::string name = string(in["name"]);
      auto it = g.tensors.find(name);
      if (it == g.tensors.end() || g.is_constant(name))
        r_.fail(in["name"].path, quote_name(name) + " has no entry in tensors");
      const TensorInfo& info = it->second;
      std::string entry = entry_path("tensors", name);
      DType type = dtype(in["dtype"]);
      if (type != info.dtype)
        r_.fail(in["dtype"].path,
                std::string(dtype_name(type)) + " differs from " + entry + ".dtype " + dtype_name(info.dtype));
      Shape s = shape(in["shape"], type, true);
      // An input without elements (batch 0) gives a model nothing to run on: refused at load.
      if (std::count(s.begin(), s.end(), 0))
        r_.fail(in["shape"].path, shape_str(s) + " holds no elements; a model input needs at least one (batch 0?)");
      if (s != info.shape)
        r_.fail(in["shape"].path, shape_str(s) + " differs from " + entry + ".shape " + shape_str(info.shape));
      return name;
    });
    if (g.inputs.empty()) r_.fail(f.path, "is empty; a model needs at least one input (what it classifies)");
  }

  Node node(const Field& f) const {
    object(f, {"name", "op", "inputs", "outputs", "attrs"});
    Node n;
    n.name = string(f["name"]);
    n.op = string(f["op"]);
    n.inputs = strings(f["inputs"]);
    n.outputs = strings(f["outputs"]);
    Field attrs = f["attrs"];
    expect(attrs, attrs.value.is_object(), "an object");
    for (const auto& item : attrs.value.items()) n.attrs.values[item.key()] = attribute(attrs.entry(item.key()));
    return n;
  }

  // Tagged so that each AttrValue alternative reads back as itself: {"i": 3} is never {"f": 3}.
  AttrValue attribute(const Field& f) const {
    object(f, {}, {"i", "f", "s", "ints", "floats"});
    if (f.value.size() != 1) r_.fail(f.path, "expected exactly one of the keys i, f, s, ints, floats");
    const std::string kind = f.value.begin().key();
    Field v = f[kind.c_str()];
    if (kind == "i") return integer(v, kInt64Min, kInt64Max);
    if (kind == "f") return real(v);
    if (kind == "s") return string(v);
    if (kind == "ints") return integers(v, kInt64Min, kInt64Max);
    return reals(v);
  }

  Preprocess preprocess(const Field& f) const {
    object(f, {"resize_shorter", "resize", "crop", "scale", "mean", "std", "channel_order", "layout"});
    Preprocess p;
    p.present = true;
    p.resize_shorter = static_cast<int>(integer(f["resize_shorter"], INT_MIN, INT_MAX));
    p.resize = vocabulary<Resize>(f["resize"]);
    std::vector<int64_t> crop = sized(integers(f["crop"], INT_MIN, INT_MAX), f["crop"], 2);
    p.crop_height = static_cast<int>(crop[0]);
    p.crop_width = static_cast<int>(crop[1]);
    p.scale = real(f["scale"]);
    std::vector<float> mean = sized(reals(f["mean"]), f["mean"], 3);
    std::vector<float> deviation = sized(reals(f["std"]), f["std"], 3);
    std::copy(mean.begin(), mean.end(), p.mean.begin());
    std::copy(deviation.begin(), deviation.end(), p.std.begin());
    p.channel_order = vocabulary<ChannelOrder>(f["channel_order"]);
    p.layout = vocabulary<Layout>(f["layout"]);
    return p;
  }

  Reporter r_;
  BinaryView binary_;
  std::shared_ptr<const void> mapping_;
  std::string binary_name_;
};

// ---- Writing ------------------------------------------------------------------------------------------------

// Floats are stored as the double of the same value; nlohmann prints doubles so they read back exactly.
ordered_json floats_json(const std::vector<float>& values) {
  ordered_json j = ordered_json::array();
  for (float v : values) j.push_back(static_cast<double>(v));
  return j;
}

ordered_json tensor_json(DType dtype, const Shape& shape) {
  ordered_json dims = ordered_json::array();
  for (int64_t d : shape) d == kBatchDim ? dims.push_back("N") : dims.push_back(d);
  return {{"dtype", dtype_name(dtype)}, {"shape", dims}};
}

ordered_json quant_json(const QuantParams& q) {
  return {{"scales", floats_json(q.scales)}, {"zero_points", q.zero_points}, {"axis", q.axis}};
}

ordered_json attribute_json(const AttrValue& value) {
  return std::visit(
      [](const auto& v) -> ordered_json {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, int64_t>)
          return {{"i", v}};
        else if constexpr (std::is_same_v<T, float>)
          return {{"f", static_cast<double>(v)}};
        else if constexpr (std::is_same_v<T, std::string>)
          return {{"s", v}};
        else if constexpr (std::is_same_v<T, std::vector<int64_t>>)
          return {{"ints", v}};
        else
          return {{"floats", floats_json(v)}};
      },
      value);
}

ordered_json preprocess_json(const Preprocess& p) {
  return {{"resize_shorter", p.resize_shorter},
          {"resize", preprocess_name(p.resize)},
          {"crop", {p.crop_height, p.crop_width}},
          {"scale", static_cast<double>(p.scale)},
          {"mean", floats_json(std::vector<float>(p.mean.begin(), p.mean.end()))},
          {"std", floats_json(std::vector<float>(p.std.begin(), p.std.end()))},
          {"channel_order", preprocess_name(p.channel_order)},
          {"layout", preprocess_name(p.layout)}};
}

// One top-level key per line and one entry per line inside each section, so model.json reads and diffs well.
std::string dump_sections(const ordered_json& doc) {
  std::string out = "{\n";
  size_t key_index = 0;
  for (const auto& section : doc.items()) {
    const ordered_json& value = section.value();
    out += "  " + ordered_json(section.key()).dump() + ": ";
    if (value.is_structured() && !value.empty()) {
      out += value.is_object() ? "{\n" : "[\n";
      size_t entry_index = 0;
      for (const auto& entry : value.items()) {
        out += "    " + (value.is_object() ? ordered_json(entry.key()).dump() + ": " : "") + entry.value().dump();
        out += ++entry_index < value.size() ? ",\n" : "\n";
      }
      out += value.is_object() ? "  }" : "  ]";
    } else {
      out += value.dump();
    }
    out += ++key_index < doc.size() ? ",\n" : "\n";
  }
  return out + "}\n";
}

template <typename Bytes>
Bytes read_file(const fs::path& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(path.string() + ": cannot open " + what + ": " + std::strerror(errno));
  std::streamoff size = in.tellg();
  if (size < 0) throw Error(path.string() + ": cannot read " + what);
  Bytes data(static_cast<size_t>(size), 0);
  in.seekg(0);
  if (!in.read(reinterpret_cast<char*>(data.data()), size)) throw Error(path.string() + ": cannot read " + what);
  return data;
}

// model.bin mapped read-only and private: constants are views into it, pages are read when a kernel first
// touches them and can be dropped again once it has repacked them (ConstantBytes::release_pages).
struct MappedFile {
  const uint8_t* data = nullptr;
  size_t size = 0;
  ~MappedFile() {
    if (size) munmap(const_cast<uint8_t*>(data), size);
  }
};

std::shared_ptr<const MappedFile> map_file(const fs::path& path, const std::string& what) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path.string() + ": cannot open " + what + ": " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    int error = errno;
    close(fd);
    throw Error(path.string() + ": cannot read " + what + ": " + (error ? std::strerror(error) : "not a regular file"));
  }
  auto file = std::make_shared<MappedFile>();
  if (st.st_size > 0) {  // mmap refuses a zero length; an empty model.bin is a valid model without constants
    void* p = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int error = errno;
      close(fd);
      throw Error(path.string() + ": cannot map " + what + ": " + std::strerror(error));
    }
    file->data = static_cast<const uint8_t*>(p);
    file->size = static_cast<size_t>(st.st_size);
  }
  close(fd);  // the mapping keeps the file
  return file;
}

// Writes `data` to a new temporary file in `folder` (so a rename moves it into place on the same file
// system) and flushes it to disk. Returns its path; on failure removes it and throws naming `target`.
fs::path write_temporary(const fs::path& folder, const std::string& target, const void* data, size_t size) {
  std::string pattern = (folder / ("." + target + ".XXXXXX")).string();
  int fd = ::mkstemp(pattern.data());
  if (fd < 0)
    throw Error((folder / target).string() + ": cannot create a temporary file beside it: " + std::strerror(errno));
  const char* at = static_cast<const char*>(data);
  size_t left = size;
  int error = 0;
  while (left > 0 && !error) {
    ssize_t n = ::write(fd, at, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      error = n < 0 ? errno : EIO;
    else
      at += n, left -= static_cast<size_t>(n);
  }
  if (!error && ::fsync(fd) != 0) error = errno;
  if (::close(fd) != 0 && !error) error = errno;
  if (error) {
    ::unlink(pattern.c_str());
    throw Error((folder / target).string() + ": write failed after " + std::to_string(size - left) + " of " +
                std::to_string(size) + " bytes: " + std::strerror(error) + " (the previous file is unchanged)");
  }
  return pattern;
}

void sync_folder(const fs::path& folder) {
  int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;  // the renames are done; durability of the folder entry is best effort
  ::fsync(fd);
  ::close(fd);
}

// A path where a model file goes must be absent or a regular file: checked before anything is written, so
// a model.json that is a folder fails the write while the previous model is whole.
void check_replaceable(const fs::path& path) {
  std::error_code ec;
  fs::file_status status = fs::symlink_status(path, ec);
  if (!ec && fs::exists(status) && !fs::is_regular_file(status))
    throw Error(path.string() + ": exists and is not a regular file; not replaced");
}

}  // namespace

Graph parse_model(const std::string& json_text, const std::vector<uint8_t>& binary, const std::string& source_name) {
  return ModelParser(source_name, {binary.data(), binary.size()}, nullptr).parse(json_text);
}

Graph read_model(const std::string& path) {
  std::error_code ec;
  fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) throw Error(path + ": no such model folder or model.json file");
  fs::path json_path = fs::is_directory(status) ? fs::path(path) / "model.json" : fs::path(path);
  fs::path binary_path = json_path.parent_path() / "model.bin";
  auto text = read_file<std::string>(json_path, "the model description");
  std::shared_ptr<const MappedFile> binary =
      map_file(binary_path, "the model weights (model.bin must sit beside model.json)");
  return ModelParser(json_path.string(), {binary->data, binary->size}, binary).parse(text);
}

ModelFiles serialize_model(const Graph& graph) {
  Reporter r("cannot write model '" + graph.name + "'");
  check_model(graph, r);
  ModelFiles files;
  ordered_json doc;
  doc["format"] = kFormatName;
  doc["version"] = kFormatVersion;
  doc["name"] = graph.name;
  doc["inputs"] = ordered_json::array();
  for (const std::string& name : graph.inputs) {
    ordered_json input = {{"name", name}};
    input.update(tensor_json(graph.tensor(name).dtype, graph.tensor(name).shape));
    doc["inputs"].push_back(input);
  }
  doc["outputs"] = graph.outputs;
  if (graph.preprocess.present) doc["preprocess"] = preprocess_json(graph.preprocess);
  if (!graph.labels.empty()) doc["labels"] = graph.labels;

  doc["tensors"] = ordered_json::object();
  for (const auto& [name, info] : graph.tensors) {
    if (graph.is_constant(name)) continue;  // stored with the constant below
    ordered_json& t = doc["tensors"][name] = tensor_json(info.dtype, info.shape);
    if (info.quant.present()) t["quant"] = quant_json(info.quant);
  }

  int64_t total = 0;
  for (const auto& entry : graph.constants) total = align_up(total + static_cast<int64_t>(entry.second.bytes->size()));
  files.binary.reserve(static_cast<size_t>(total));
  doc["constants"] = ordered_json::object();
  for (const auto& [name, constant] : graph.constants) {
    ordered_json& c = doc["constants"][name] = tensor_json(constant.dtype, constant.shape);
    c["offset"] = files.binary.size();
    c["bytes"] = constant.bytes->size();
    auto info = graph.tensors.find(name);
    if (info != graph.tensors.end() && info->second.quant.present()) c["quant"] = quant_json(info->second.quant);
    files.binary.insert(files.binary.end(), constant.bytes->begin(), constant.bytes->end());
    files.binary.resize(static_cast<size_t>(align_up(static_cast<int64_t>(files.binary.size()))), 0);
  }

  doc["nodes"] = ordered_json::array();
  for (const Node& node : graph.nodes) {
    ordered_json attrs = ordered_json::object();
    for (const auto& [name, value] : node.attrs.values) attrs[name] = attribute_json(value);
    doc["nodes"].push_back(
        {{"name", node.name}, {"op", node.op}, {"inputs", node.inputs}, {"outputs", node.outputs}, {"attrs", attrs}});
  }
  try {
    files.json = dump_sections(doc);
  } catch (const ordered_json::exception& e) {  // a name that is not valid UTF-8
    r.fail("", e.what());
  }
  return files;
}

void write_model(const Graph& graph, const std::string& folder) {
  ModelFiles files = serialize_model(graph);
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) throw Error(folder + ": cannot create the model folder: " + ec.message());
  // Replaced, never rewritten in place: a process may have the old model.bin mapped (Model::load), and a
  // truncated or rewritten mapping kills it (SIGBUS) or pairs new weights with old scales. Both files are
  // written in full to temporaries first, then renamed: model.bin, then model.json. A reader sees the old
  // model or the new one; a failure leaves the old one as it was.
  const fs::path dir(folder), bin = dir / "model.bin", json = dir / "model.json";
  check_replaceable(bin);
  check_replaceable(json);
  const fs::path bin_temp = write_temporary(dir, "model.bin", files.binary.data(), files.binary.size());
  fs::path json_temp;
  try {
    json_temp = write_temporary(dir, "model.json", files.json.data(), files.json.size());
  } catch (const Error&) {
    ::unlink(bin_temp.c_str());
    throw;
  }
  // The old model.bin stays linked under a backup name until model.json is in place, to be put back if
  // the second rename fails.
  fs::path backup;
  const bool had_bin = fs::exists(bin, ec);
  if (had_bin) {
    backup = dir / ".model.bin.previous";
    ::unlink(backup.c_str());
    if (::link(bin.c_str(), backup.c_str()) != 0) backup.clear();
  }
  if (::rename(bin_temp.c_str(), bin.c_str()) != 0) {
    int error = errno;
    ::unlink(bin_temp.c_str()), ::unlink(json_temp.c_str());
    if (!backup.empty()) ::unlink(backup.c_str());
    throw Error(bin.string() + ": cannot replace: " + std::strerror(error) + " (the previous model is unchanged)");
  }
  if (::rename(json_temp.c_str(), json.c_str()) != 0) {
    int error = errno;
    ::unlink(json_temp.c_str());
    bool restored =
        had_bin ? !backup.empty() && ::rename(backup.c_str(), bin.c_str()) == 0 : ::unlink(bin.c_str()) == 0;
    throw Error(
        json.string() + ": cannot replace: " + std::strerror(error) +
        (restored ? " (the previous model is unchanged)" : " (model.bin was replaced; the folder is inconsistent)"));
  }
  if (!backup.empty()) ::unlink(backup.c_str());
  sync_folder(dir);
}

}  // namespace octet
