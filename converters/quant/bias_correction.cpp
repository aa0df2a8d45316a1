#include "converters/quant/bias_correction.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "converters/quant/calibration.h"
#include "graph/quantization.h"

namespace octet::quant {
namespace {

// The FP32 tensor a quantized input stands for: itself, or the input of the Quantize node that made it.
std::string fp32_name(const std::string& tensor) {
  const std::string suffix = "/quantized";
  if (tensor.size() > suffix.size() && tensor.compare(tensor.size() - suffix.size(), suffix.size(), suffix) == 0)
    return tensor.substr(0, tensor.size() - suffix.size());
  return tensor;
}

// Sums of the weights from each input channel to each output channel, [out * in_channels]; the weights as
// floats (s8 ones dequantized with `q`).
std::vector<double> weight_sums(const Node& node, const Constant& w, const QuantParams& q, int64_t in_channels) {
  auto value = [&](int64_t i, int64_t channel) -> double {
    if (w.dtype == DType::f32) return w.data<float>()[i];
    float scale = q.scales.size() == 1 ? q.scales[0] : q.scales[static_cast<size_t>(channel)];
    return dequantize_value(w.data<int8_t>()[i], scale, 0);
  };
  if (node.op == "Gemm") {  // B is [K, N], or [N, K] with transB
    bool trans_b = node.attrs.get_int("transB", 0) != 0;
    int64_t rows = w.shape[0], cols = w.shape[1], out = trans_b ? rows : cols;
    std::vector<double> sums(static_cast<size_t>(out * in_channels));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        int64_t o = trans_b ? r : c, k = trans_b ? c : r;
        sums[static_cast<size_t>(o * in_channels + k)] += value(r * cols + c, o);
      }
    return sums;
  }
  // Conv weights [OC, IC/group, k...]: output channel o reads the input channels of its group.
  int64_t oc = w.shape[0], ic_per_group = w.shape[1], kernel = w.elements() / (oc * ic_per_group);
  int64_t oc_per_group = oc / (in_channels / ic_per_group);
  std::vector<double> sums(static_cast<size_t>(oc * in_channels));
  for (int64_t o = 0; o < oc; ++o)
    for (int64_t i = 0; i < ic_per_group; ++i)
      for (int64_t k = 0; k < kernel; ++k)
        sums[static_cast<size_t>(o * in_channels + (o / oc_per_group) * ic_per_group + i)] +=
            value((o * ic_per_group + i) * kernel + k, o);
  return sums;
}

// Per-channel (axis 1) means of FP32 tensors over all images and positions.
std::map<std::string, std::vector<double>> channel_means(const Graph& graph, const std::vector<std::string>& tensors,
                                                         const std::vector<std::string>& images,
                                                         const std::function<void(size_t, size_t)>& progress) {
  std::map<std::string, std::vector<double>> sums;
  std::map<std::string, double> counts;
  run_on_images(
      graph, tensors, images,
      [&](const std::string&, Session& session) {
        for (size_t o = 0; o < session.num_outputs(); ++o) {
          Tensor t = session.output(o);
          std::vector<double>& s = sums[t.name];
          s.resize(static_cast<size_t>(t.shape.size() > 1 ? t.shape[1] : 1));
          const int64_t channels = for_each_channel_plane(t, [&](size_t c, const float* first, const float* last) {
            double plane_sum = 0;
            for (const float* x = first; x != last; ++x) plane_sum += *x;
            s[c] += plane_sum;
          });
          counts[t.name] += static_cast<double>(t.elements() / channels);
        }
      },
      progress);
  for (auto& kv : sums)
    for (double& v : kv.second) v /= counts[kv.first];
  return sums;
}

bool is_quantized_layer(const Graph& graph, const Node& node) {
  return (node.op == "Conv" || node.op == "Gemm") && graph.tensor(node.inputs[0]).dtype != DType::f32;
}

}  // namespace

BiasCorrectionReport correct_bias(Graph& int8, const Graph& fp32, const std::vector<std::string>& images,
                                  const std::function<void(size_t, size_t)>& progress) {
  std::map<std::string, const Node*> fp32_nodes;
  for (const Node& n : fp32.nodes) fp32_nodes[n.name] = &n;
  std::vector<std::string> inputs;
  for (const Node& node : int8.nodes) {
    std::string input = fp32_name(node.inputs[0]);
    if (is_quantized_layer(int8, node) && std::find(inputs.begin(), inputs.end(), input) == inputs.end())
      inputs.push_back(input);
  }
  BiasCorrectionReport report;
  if (inputs.empty()) return report;
  std::map<std::string, std::vector<double>> means = channel_means(fp32, inputs, images, progress);

  double shift_sum = 0, channels = 0;
  for (Node& node : int8.nodes) {
    if (!is_quantized_layer(int8, node)) continue;
    const Node& original = *fp32_nodes.at(node.name);
    const std::vector<double>& mean = means.at(fp32_name(node.inputs[0]));
    int64_t in_channels = static_cast<int64_t>(mean.size());
    const QuantParams& w_params = int8.tensor(node.inputs[1]).quant;
    std::vector<double> w_sum = weight_sums(original, fp32.constants.at(original.inputs[1]), {}, in_channels);
    std::vector<double> wq_sum = weight_sums(node, int8.constants.at(node.inputs[1]), w_params, in_channels);
    int64_t out_channels = static_cast<int64_t>(w_sum.size()) / in_channels;
    std::vector<float> bias(static_cast<size_t>(out_channels), 0.0f);
    if (original.inputs.size() > 2 && !original.inputs[2].empty())
      bias = fp32.constants.at(original.inputs[2]).as_floats();
    const TensorInfo& out = int8.tensor(node.outputs[0]);
    double step = out.quant.present() ? out.quant.scales[0] : 1.0;
    for (int64_t c = 0; c < out_channels; ++c) {
      double delta = 0;
      for (int64_t i = 0; i < in_channels; ++i) {
        size_t k = static_cast<size_t>(c * in_channels + i);
        delta += (wq_sum[k] - w_sum[k]) * mean[static_cast<size_t>(i)];
      }
      bias[static_cast<size_t>(c)] -= static_cast<float>(delta);
      shift_sum += std::fabs(delta) / step;
      report.max_abs_shift = std::max(report.max_abs_shift, std::fabs(delta) / step);
      ++channels;
    }
    std::string name = node.name + "/bias_s32";
    float in_scale = int8.tensor(node.inputs[0]).quant.scales[0];
    int8.constants[name] = quantize_bias(Constant::from_floats({out_channels}, bias), in_scale, w_params);
    if (node.inputs.size() < 3) node.inputs.resize(3);
    node.inputs[2] = name;
    ++report.layers;
  }
  report.mean_abs_shift = shift_sum / channels;
  return report;
}

}  // namespace octet::quant