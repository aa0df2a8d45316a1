#include "converters/analysis/conformance.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "converters/onnx/import.h"
#include "converters/onnx/qdq_import.h"
#include "converters/quant/convert.h"
#include "converters/quant/given_quantization.h"
#include "graph/graph.h"
#include "graph/quantization.h"
#include "octet/evaluation.h"
#include "octet/octet.h"

namespace fs = std::filesystem;

namespace octet::analysis {
namespace {

::onnx::ModelProto load_proto(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw Error(path + ": cannot open");
  ::onnx::ModelProto model;
  if (!model.ParseFromIstream(&file)) throw Error(path + ": not a valid ONNX model");
  return model;
}

// Ops whose every input is run-time data; for all others only input 0 is, and the rest (weights, shapes,
// bounds) must be known at conversion.
bool all_inputs_are_data(const std::string& op) {
  static const std::set<std::string> ops = {"Add", "Sub", "Mul", "Div", "MatMul", "Gemm", "Concat"};
  return ops.count(op) != 0;
}

// Graph inputs that the model only reads as static operands: the runner binds their test values as constants.
std::set<std::string> static_operand_inputs(const ::onnx::ModelProto& model) {
  std::set<std::string> data, operand;
  for (const ::onnx::NodeProto& node : model.graph().node())
    for (int i = 0; i < node.input_size(); ++i)
      (i == 0 || all_inputs_are_data(node.op_type()) ? data : operand).insert(node.input(i));
  std::set<std::string> result;
  for (const std::string& name : operand)
    if (!data.count(name)) result.insert(name);
  return result;
}

std::vector<std::string> runtime_input_names(const ::onnx::ModelProto& model) {
  std::set<std::string> initializers;
  for (const auto& t : model.graph().initializer()) initializers.insert(t.name());
  std::vector<std::string> names;
  for (const auto& in : model.graph().input())
    if (!initializers.count(in.name())) names.push_back(in.name());
  return names;
}

std::vector<std::string> sorted_files(const fs::path& dir, const std::string& prefix) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && e.path().extension() == ".pb") files.push_back(e.path().string());
  }
  // input_10 after input_9: order by the number after the prefix.
  std::sort(files.begin(), files.end(), [&](const std::string& a, const std::string& b) {
    auto number = [&](const std::string& p) { return std::stoi(fs::path(p).stem().string().substr(prefix.size())); };
    return number(a) < number(b);
  });
  return files;
}

struct DataSet {
  std::vector<std::pair<std::string, Constant>> inputs;
  std::vector<Constant> outputs;
};

DataSet read_data_set(const fs::path& dir, const std::vector<std::string>& input_names) {
  DataSet set;
  std::vector<std::string> files = sorted_files(dir, "input_");
  for (size_t i = 0; i < files.size(); ++i) {
    std::string name;
    Constant value = onnx::read_tensor_pb(files[i], &name);
    if (name.empty()) {
      if (i >= input_names.size()) throw Error(files[i] + ": more input files than model inputs");
      name = input_names[i];
    }
    set.inputs.emplace_back(name, value);
  }
  for (const std::string& f : sorted_files(dir, "output_")) set.outputs.push_back(onnx::read_tensor_pb(f));
  return set;
}

void compare(const std::string& what, const Tensor& got, const Constant& want, const ConformanceOptions& options,
             ConformanceResult& result) {
  if (want.dtype != DType::f32) throw Error(what + ": reference output is " + dtype_name(want.dtype) + ", not f32");
  if (got.elements() != want.elements())
    throw Error(what + ": shape " + shape_str(got.shape) + " but the reference has " + shape_str(want.shape));
  const float* ref = want.data<float>();
  for (int64_t i = 0; i < want.elements(); ++i) {
    double a = got.data[i], b = ref[i];
    if (std::isnan(a) != std::isnan(b)) throw Error(what + ": NaN mismatch at element " + std::to_string(i));
    if (std::isnan(b) || (std::isinf(b) && a == b)) continue;
    double err = std::fabs(a - b);
    result.max_abs_error = std::max(result.max_abs_error, err);
    result.max_rel_error = std::max(result.max_rel_error, err / std::max(std::fabs(b), 1e-12));
    if (!(err <= options.atol + options.rtol * std::fabs(b)))
      throw Error(what + ": element " + std::to_string(i) + " is " + std::to_string(a) + ", expected " +
                  std::to_string(b));
  }
}

// INT8 mode: accumulates the signal and noise energy and the top-1 agreement of each row.
struct Agreement {
  double signal = 0, noise = 0;
  size_t rows = 0, agreeing = 0;

  void add(const Tensor& got, const Constant& want) {
    if (got.elements() != want.elements())
      throw Error("output shape " + shape_str(got.shape) + " but the reference has " + shape_str(want.shape));
    const float* ref = want.data<float>();
    for (int64_t i = 0; i < want.elements(); ++i) {
      signal += double(ref[i]) * ref[i];
      noise += (double(got.data[i]) - ref[i]) * (double(got.data[i]) - ref[i]);
    }
    size_t row = want.shape.empty() ? 1 : static_cast<size_t>(want.shape.back());
    for (size_t r = 0; row && r < static_cast<size_t>(want.elements()) / row; ++r, ++rows)
      agreeing += top1_agrees(ref + r * row, got.data + r * row, row);
  }
  double sqnr_db() const { return noise == 0 ? INFINITY : 10 * std::log10(signal / noise); }
};

// The model as the folder's options ask: FP32 as imported, or quantized by the default policy.
std::shared_ptr<const Model> prepare_model(const std::string& model_path, const onnx::ImportOptions& import,
                                           const ConformanceOptions& options) {
  if (onnx::is_quantized_onnx_file(model_path)) {
    if (!options.calibrate.empty())
      throw Error(model_path + " is already quantized: run it without --int8/--calibrate");
    return Model::from_graph(quant::import_quantized_onnx(model_path));
  }
  Graph graph = onnx::import_onnx(model_path, import);
  if (!options.calibrate.empty()) {
    onnx::PreprocessOptions preprocess;
    preprocess.preset = options.preset;
    onnx::apply_preprocess_options(preprocess, graph);
    if (!graph.preprocess.present) throw Error("--calibrate needs --preset to read the calibration images");
    graph = quant::quantize_model(graph, quant::select_calibration_images(options.calibrate, options.calib_count),
                                  quant::QuantizeOptions{}, true, nullptr);
  }
  return Model::from_graph(std::move(graph));
}

}  // namespace

std::vector<std::string> find_conformance_folders(const std::string& path) {
  std::vector<std::string> folders;
  if (fs::exists(fs::path(path) / "model.onnx")) return {path};
  if (!fs::is_directory(path)) throw Error(path + ": not a folder");
  for (const auto& e : fs::directory_iterator(path))
    if (e.is_directory() && fs::exists(e.path() / "model.onnx")) folders.push_back(e.path().string());
  std::sort(folders.begin(), folders.end());
  return folders;
}

std::vector<std::string> onnx_model_ops(const std::string& model_path) {
  ::onnx::ModelProto model = load_proto(model_path);
  std::vector<std::string> ops;
  for (const auto& node : model.graph().node()) ops.push_back(node.op_type());
  return ops;
}

ConformanceResult run_conformance_folder(const std::string& folder, const ConformanceOptions& options) {
  ConformanceResult result;
  result.folder = folder;
  try {
    std::string model_path = (fs::path(folder) / "model.onnx").string();
    ::onnx::ModelProto proto = load_proto(model_path);
    std::vector<std::string> input_names = runtime_input_names(proto);
    std::set<std::string> operands = static_operand_inputs(proto);

    std::vector<fs::path> set_dirs;
    for (const auto& e : fs::directory_iterator(folder))
      if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0)
        set_dirs.push_back(e.path());
    std::sort(set_dirs.begin(), set_dirs.end());
    if (set_dirs.empty()) throw Error(folder + ": no test_data_set_* folders");

    // A model quantized elsewhere runs with its own parameters and is judged like an INT8 one (top-1 and SQNR).
    const bool quantized_model = onnx::is_quantized_onnx(proto);
    result.quantized_model = quantized_model;
    bool int8 = !options.calibrate.empty() || quantized_model;
    Agreement agreement;
    std::shared_ptr<const Model> model;  // reused across data sets unless operands are bound from each
    for (const fs::path& dir : set_dirs) {
      DataSet set = read_data_set(dir, input_names);
      onnx::ImportOptions import;
      import.refuse_empty_inputs = false;  // e.g. test_split_zero_size_splits
      for (const auto& in : set.inputs)
        if (operands.count(in.first)) import.bind_inputs[in.first] = in.second;
      if (!model || !import.bind_inputs.empty()) model = prepare_model(model_path, import, options);
      const Graph& graph = model->graph();
      int64_t batch = 1;
      for (const auto& in : set.inputs)
        if (!operands.count(in.first) && graph.tensors.count(in.first) && !graph.tensor(in.first).shape.empty() &&
            graph.tensor(in.first).shape[0] == kBatchDim)
          batch = in.second.shape.at(0);
      Session session(model, {batch, options.threads, options.reference_kernels});
      for (const auto& in : set.inputs) {
        if (operands.count(in.first)) continue;
        Tensor t = session.input(in.first);
        if (in.second.dtype != DType::f32)
          throw Error(dir.string() + ": input '" + in.first + "' is " + dtype_name(in.second.dtype) +
                      ", octet feeds f32");
        if (t.elements() != in.second.elements())
          throw Error(dir.string() + ": input '" + in.first + "' has shape " + shape_str(in.second.shape) +
                      ", model expects " + shape_str(t.shape));
        std::copy(in.second.data<float>(), in.second.data<float>() + t.elements(), t.data);
      }
      session.run();
      if (set.outputs.size() != session.num_outputs())
        throw Error(dir.string() + ": " + std::to_string(set.outputs.size()) + " reference outputs, model has " +
                    std::to_string(session.num_outputs()));
      for (size_t i = 0; i < set.outputs.size(); ++i) {
        if (int8)
          agreement.add(session.output(i), set.outputs[i]);
        else
          compare(dir.filename().string() + " output " + std::to_string(i), session.output(i), set.outputs[i], options,
                  result);
      }
      ++result.data_sets;
    }
    if (int8) {
      result.sqnr_db = agreement.sqnr_db();
      result.top1_agreement = agreement.rows ? double(agreement.agreeing) / double(agreement.rows) : 0;
      const double min_sqnr = quantized_model ? options.quantized_min_sqnr_db : options.min_sqnr_db;
      if (result.sqnr_db < min_sqnr)
        throw Error("INT8 output SQNR " + std::to_string(result.sqnr_db) + " dB is below " + std::to_string(min_sqnr) +
                    " dB");
      if (quantized_model && agreement.agreeing != agreement.rows)
        throw Error("top-1 differs from the reference in " + std::to_string(agreement.rows - agreement.agreeing) +
                    " of " + std::to_string(agreement.rows) + " rows (SQNR " + std::to_string(result.sqnr_db) + " dB)");
    }
    result.passed = true;
  } catch (const std::exception& e) {
    result.message = e.what();
  }
  return result;
}

}  // namespace octet::analysis