#include "converters/quant/equalization.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "converters/onnx/passes.h"
#include "converters/quant/calibration.h"
#include "converters/quant/smoothing.h"
#include "graph/fused_activation.h"
#include "octet/error.h"

namespace octet::quant {
namespace {

bool has_constant_input(const Graph& graph, const Node& node, size_t i) {
  return node.inputs.size() > i && !node.inputs[i].empty() && graph.is_constant(node.inputs[i]);
}

// Nodes through which a positive per-channel scale passes unchanged: f(s x) = s f(x).
bool commutes_with_channel_scale(const Node& node) {
  return node.op == "MaxPool" || node.op == "AveragePool" || node.op == "Relu" || node.op == "LeakyRelu";
}

size_t node_index(const Graph& graph, const std::string& name) {
  for (size_t i = 0; i < graph.nodes.size(); ++i)
    if (graph.nodes[i].name == name) return i;
  throw Error("equalization: no node named " + name);
}

std::string fresh_constant_name(const Graph& graph, const std::string& base) {
  std::string name = base;
  for (int i = 2; graph.is_constant(name) || graph.tensors.count(name); ++i) name = base + "_" + std::to_string(i);
  return name;
}

}  // namespace

void replace_constant(Graph& graph, Node& node, size_t i, const std::vector<float>& values) {
  const Constant& old = graph.constants.at(node.inputs[i]);
  std::string name = fresh_constant_name(graph, node.inputs[i] + "/equalized");
  graph.constants[name] = Constant::from_floats(old.shape, values);
  node.inputs[i] = name;
}

double channel_spread(const std::vector<double>& ranges) {
  double largest = 0, sum = 0;
  for (double r : ranges) {
    largest = std::max(largest, r);
    sum += r;
  }
  return sum > 0 ? largest / (sum / static_cast<double>(ranges.size())) : 1.0;
}

std::vector<float> balanced_scales(const std::vector<double>& range, const std::vector<double>& column, double alpha) {
  double largest_range = 0;
  for (double r : range) largest_range = std::max(largest_range, r);
  std::vector<double> scale(range.size(), 1.0);
  double largest_scaled = 0;
  for (size_t c = 0; c < range.size(); ++c) {
    // A channel that is always 0, or that B ignores, keeps its scale (its range then does not matter).
    if (range[c] <= largest_range * 1e-12 || column[c] == 0) continue;
    scale[c] = std::pow(column[c], 1.0 - alpha) / std::pow(range[c], alpha);
    largest_scaled = std::max(largest_scaled, scale[c] * range[c]);
  }
  std::vector<float> result(range.size(), 1.0f);
  if (largest_scaled == 0) return result;
  for (size_t c = 0; c < range.size(); ++c) {
    if (range[c] <= largest_range * 1e-12 || column[c] == 0) continue;
    result[c] = static_cast<float>(std::clamp(scale[c] * largest_range / largest_scaled, 1e-4, 1e4));
  }
  return result;
}

std::vector<EqualizationPair> find_equalization_pairs(const Graph& graph) {
  std::map<std::string, std::vector<size_t>> consumers = graph.consumers();
  auto only_reader = [&](const std::string& tensor) -> const Node* {
    auto it = consumers.find(tensor);
    if (it == consumers.end() || it->second.size() != 1 ||
        std::count(graph.outputs.begin(), graph.outputs.end(), tensor) != 0)
      return nullptr;
    const Node& reader = graph.nodes[it->second[0]];
    // Read once (a node reading the tensor twice is listed once per input).
    return std::count(reader.inputs.begin(), reader.inputs.end(), tensor) == 1 ? &reader : nullptr;
  };
  std::vector<EqualizationPair> pairs;
  for (const Node& a : graph.nodes) {
    if (a.op != "Conv" || !has_constant_input(graph, a, 1)) continue;
    if (a.inputs.size() > 2 && !a.inputs[2].empty() && !graph.is_constant(a.inputs[2])) continue;
    if (a.inputs.size() > 3 && !a.inputs[3].empty()) continue;  // a residual sum is not scaled with A
    const FusedActivationSpec act = read_fused_activation(a, "act");
    if (act.kind == FusedActivation::clip) continue;  // ReLU6 has a fixed bound
    if (!act.homogeneous()) continue;                 // HardSwish, GELU: a channel scale does not pass through them
    EqualizationPair pair{a.name, "", a.outputs[0], {}};
    std::string tensor = a.outputs[0];
    const Node* next = only_reader(tensor);
    while (next && commutes_with_channel_scale(*next) && next->inputs[0] == tensor) {
      pair.path.push_back(next->name);
      tensor = next->outputs[0];
      next = only_reader(tensor);
    }
    if (!next || next->op != "Conv" || next->inputs[0] != tensor || next->attrs.get_int("group", 1) != 1 ||
        !has_constant_input(graph, *next, 1))
      continue;
    pair.conv_b = next->name;
    pairs.push_back(pair);
  }
  return pairs;
}

std::map<std::string, ChannelRanges> collect_channel_ranges(const Graph& graph, const std::vector<std::string>& tensors,
                                                            const std::vector<std::string>& images,
                                                            const std::function<void(size_t, size_t)>& progress,
                                                            ChannelAxis axis) {
  std::map<std::string, ChannelRanges> ranges;
  run_on_images(
      graph, tensors, images,
      [&](const std::string&, Session& session) {
        for (size_t o = 0; o < session.num_outputs(); ++o) {
          Tensor t = session.output(o);
          ChannelRanges& r = ranges[t.name];
          const size_t channels = static_cast<size_t>(axis == ChannelAxis::last ? t.shape.back()
                                                      : t.shape.size() > 1      ? t.shape[1]
                                                                                : 1);
          r.min.resize(channels, 0.0f);  // widened to include 0
          r.max.resize(channels, 0.0f);
          auto widen = [&r](size_t c, float x) {
            r.min[c] = std::min(r.min[c], x);
            r.max[c] = std::max(r.max[c], x);
          };
          if (axis == ChannelAxis::last) {
            for (int64_t i = 0; i < t.elements(); ++i) widen(static_cast<size_t>(i) % channels, t.data[i]);
          } else {
            for_each_channel_plane(t, [&](size_t c, const float* first, const float* last) {
              for (const float* x = first; x != last; ++x) widen(c, *x);
            });
          }
        }
      },
      progress);
  return ranges;
}

std::vector<float> equalization_scales(const Graph& graph, const EqualizationPair& pair, const ChannelRanges& ranges,
                                       double alpha) {
  const Node& b = graph.nodes[node_index(graph, pair.conv_b)];
  const Constant& wb = graph.constants.at(b.inputs[1]);
  int64_t out = wb.shape.at(0), channels = wb.shape.at(1), kernel = wb.elements() / (out * channels);
  if (static_cast<int64_t>(ranges.max.size()) != channels || ranges.min.size() != ranges.max.size())
    throw Error("equalization of " + pair.tensor + ": " + std::to_string(ranges.max.size()) + " channel ranges for " +
                pair.conv_b + "'s " + std::to_string(channels) + " input channels");
  const float* w = wb.data<float>();
  // Column ranges relative to their output channel's largest weight (that weight sets the channel's step).
  std::vector<double> column(static_cast<size_t>(channels), 0.0);
  for (int64_t o = 0; o < out; ++o) {
    const float* row = w + o * channels * kernel;
    double row_max = 0;
    for (int64_t i = 0; i < channels * kernel; ++i) row_max = std::max(row_max, static_cast<double>(std::fabs(row[i])));
    if (row_max == 0) continue;
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t k = 0; k < kernel; ++k)
        column[static_cast<size_t>(c)] =
            std::max(column[static_cast<size_t>(c)], std::fabs(row[c * kernel + k]) / row_max);
  }
  std::vector<double> range(static_cast<size_t>(channels));
  for (size_t c = 0; c < range.size(); ++c)
    range[c] = static_cast<double>(ranges.max[c]) - static_cast<double>(ranges.min[c]);
  return balanced_scales(range, column, alpha);
}

EqualizationReport equalize_pairs(Graph& graph, const std::map<std::string, ChannelRanges>& ranges, double alpha) {
  EqualizationReport report;
  double before = 0, after = 0;
  for (const EqualizationPair& pair : find_equalization_pairs(graph)) {
    auto r = ranges.find(pair.tensor);
    if (r == ranges.end()) continue;
    std::vector<float> s = equalization_scales(graph, pair, r->second, alpha);
    std::vector<double> range_before(s.size()), range_after(s.size());
    for (size_t c = 0; c < s.size(); ++c) {
      range_before[c] = static_cast<double>(r->second.max[c]) - r->second.min[c];
      range_after[c] = range_before[c] * s[c];
    }
    before += channel_spread(range_before);
    after += channel_spread(range_after);

    Node& a = graph.nodes[node_index(graph, pair.conv_a)];
    std::vector<float> wa = graph.constants.at(a.inputs[1]).as_floats();
    size_t per_channel = wa.size() / s.size();
    for (size_t i = 0; i < wa.size(); ++i) wa[i] *= s[i / per_channel];
    replace_constant(graph, a, 1, wa);
    if (a.inputs.size() > 2 && !a.inputs[2].empty()) {
      std::vector<float> bias = graph.constants.at(a.inputs[2]).as_floats();
      for (size_t c = 0; c < bias.size(); ++c) bias[c] *= s[c];
      replace_constant(graph, a, 2, bias);
    }
    Node& b = graph.nodes[node_index(graph, pair.conv_b)];
    const Constant& wb_constant = graph.constants.at(b.inputs[1]);
    std::vector<float> wb = wb_constant.as_floats();
    size_t channels = s.size(), kernel = wb.size() / (static_cast<size_t>(wb_constant.shape[0]) * channels);
    for (size_t i = 0; i < wb.size(); ++i) wb[i] /= s[(i / kernel) % channels];
    replace_constant(graph, b, 1, wb);
    ++report.pairs;
  }
  if (report.pairs) {
    report.spread_before = before / static_cast<double>(report.pairs);
    report.spread_after = after / static_cast<double>(report.pairs);
  }
  return report;
}

EqualizationReport equalize_ranges(Graph& graph, const std::vector<std::string>& images, double alpha,
                                   const std::function<void(size_t, size_t)>& progress) {
  std::vector<std::string> tensors;
  for (const EqualizationPair& pair : find_equalization_pairs(graph)) tensors.push_back(pair.tensor);
  EqualizationReport report;
  if (!tensors.empty()) report = equalize_pairs(graph, collect_channel_ranges(graph, tensors, images, progress), alpha);
  // The Conv pairs and the smoothed tensors are disjoint, but a smoothed tensor's ranges may follow an
  // equalized Conv: measured on the graph as equalized.
  const SmoothingReport smoothing = smooth_linear_inputs(graph, images, alpha, progress);
  report.smoothed = smoothing.sites;
  report.smoothed_spread_before = smoothing.spread_before;
  report.smoothed_spread_after = smoothing.spread_after;
  if (report.pairs || report.smoothed) onnx::eliminate_dead_code(graph);  // drops the replaced constants
  return report;
}

}  // namespace octet::quant