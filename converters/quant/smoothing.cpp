#include "converters/quant/smoothing.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>

#include "converters/quant/calibration.h"
#include "converters/quant/equalization.h"
#include "graph/fused_activation.h"
#include "octet/error.h"

namespace octet::quant {
namespace {

bool has_input(const Node& node, size_t i) { return node.inputs.size() > i && !node.inputs[i].empty(); }

int64_t normalized_axis(int64_t axis, size_t rank) { return axis < 0 ? axis + static_cast<int64_t>(rank) : axis; }

// A per-element scale of a tensor, broadcast over the dims where `shape` is 1 (same rank as the tensor).
struct BroadcastScale {
  Shape shape;
  std::vector<float> values;

  // The scale's dims from `first` on are the tensor's (all scaled dims trailing), those before are 1.
  bool trailing_from(size_t first, const Shape& tensor) const {
    for (size_t d = 0; d < shape.size(); ++d)
      if (d < first ? shape[d] != 1 : shape[d] != tensor[d]) return false;
    return true;
  }
  // Whether only the last axis is scaled.
  bool last_axis_only(const Shape& tensor) const { return !shape.empty() && trailing_from(shape.size() - 1, tensor); }
};

// The scale of a Transpose's input that gives `out` on its output.
BroadcastScale transpose_back(const BroadcastScale& out, const std::vector<int64_t>& perm) {
  const size_t rank = out.shape.size();
  BroadcastScale in{Shape(rank, 1), out.values};
  for (size_t i = 0; i < rank; ++i) in.shape[static_cast<size_t>(perm[i])] = out.shape[i];
  std::vector<int64_t> out_strides(rank, 1), in_strides(rank, 1);
  for (size_t d = rank - 1; d > 0; --d) {
    out_strides[d - 1] = out_strides[d] * out.shape[d];
    in_strides[d - 1] = in_strides[d] * in.shape[d];
  }
  for (int64_t flat = 0; flat < static_cast<int64_t>(out.values.size()); ++flat) {
    int64_t in_flat = 0;
    for (size_t i = 0; i < rank; ++i)
      in_flat += (flat / out_strides[i]) % out.shape[i] * in_strides[static_cast<size_t>(perm[i])];
    in.values[static_cast<size_t>(in_flat)] = out.values[static_cast<size_t>(flat)];
  }
  return in;
}

// The scale on a Reshape's input: the scaled trailing dims of the output regrouped as trailing dims of the
// input with the same element count, the same values in the same (row-major) order.
std::optional<BroadcastScale> reshape_back(const BroadcastScale& out, const Shape& out_shape, const Shape& in_shape) {
  size_t first = 0;
  while (first < out.shape.size() && out.shape[first] == 1) ++first;
  if (!out.trailing_from(first, out_shape)) return std::nullopt;
  const int64_t count = static_cast<int64_t>(out.values.size());
  BroadcastScale in{Shape(in_shape.size(), 1), out.values};
  int64_t product = 1;
  for (size_t d = in_shape.size(); d > 0 && product < count; --d) {
    product *= in_shape[d - 1];
    in.shape[d - 1] = in_shape[d - 1];
  }
  if (product != count) return std::nullopt;
  return in;
}

struct Tracer {
  const Graph& graph;
  std::map<std::string, size_t> producers;
  std::map<std::string, std::vector<size_t>> consumers;

  explicit Tracer(const Graph& g) : graph(g), producers(g.producers()), consumers(g.consumers()) {}

  bool graph_output(const std::string& tensor) const {
    return std::count(graph.outputs.begin(), graph.outputs.end(), tensor) != 0;
  }

  // Whether `tensor` is read by `reader` alone, once.
  bool only_reader(const std::string& tensor, size_t reader) const {
    auto it = consumers.find(tensor);
    if (graph_output(tensor) || it == consumers.end() || it->second.size() != 1 || it->second[0] != reader)
      return false;
    const Node& n = graph.nodes[reader];
    return std::count(n.inputs.begin(), n.inputs.end(), tensor) == 1;
  }

  // A Slice of the last axis with step 1, as [start, end) within a dim of `size`; nullopt otherwise.
  std::optional<std::pair<int64_t, int64_t>> last_axis_slice(const Node& node) const {
    if (node.op != "Slice") return std::nullopt;
    const Shape& in = graph.tensor(node.inputs[0]).shape;
    std::vector<int64_t> axes = node.attrs.get_ints("axes"), starts = node.attrs.get_ints("starts"),
                         ends = node.attrs.get_ints("ends"), steps = node.attrs.get_ints("steps");
    if (in.empty() || axes.size() != 1 || starts.size() != 1 || ends.size() != 1) return std::nullopt;
    if (normalized_axis(axes[0], in.size()) != static_cast<int64_t>(in.size()) - 1) return std::nullopt;
    if (!steps.empty() && (steps.size() != 1 || steps[0] != 1)) return std::nullopt;
    const int64_t size = in.back();
    auto clampi = [size](int64_t i) { return std::clamp(i < 0 ? i + size : i, int64_t{0}, size); };
    return std::make_pair(clampi(starts[0]), clampi(ends[0]));
  }

  // Whether a node takes a scale of its output's last axis into its constants.
  bool absorbs(const Node& node, const BroadcastScale& scale) const {
    const Shape& out = graph.tensor(node.outputs[0]).shape;
    if (!scale.last_axis_only(out)) return false;
    if (node.op == "LayerNormalization") {
      const int64_t c = out.back();
      return normalized_axis(node.attrs.get_int("axis", -1), out.size()) == static_cast<int64_t>(out.size()) - 1 &&
             graph.is_constant(node.inputs[1]) && graph.constants.at(node.inputs[1]).elements() == c &&
             (!has_input(node, 2) ||
              (graph.is_constant(node.inputs[2]) && graph.constants.at(node.inputs[2]).elements() == c));
    }
    if (node.op != "MatMul" && node.op != "Gemm") return false;
    if (!has_input(node, 1) || !graph.is_constant(node.inputs[1]) || has_input(node, 3)) return false;
    if (has_input(node, 2) && !graph.is_constant(node.inputs[2])) return false;
    if (read_fused_activation(node, "act").kind != FusedActivation::none) return false;
    const Constant& w = graph.constants.at(node.inputs[1]);
    if (w.shape.size() != 2) return false;
    if (node.op == "Gemm" && (node.attrs.get_int("transA", 0) != 0 || node.attrs.get_float("alpha", 1) != 1.0f))
      return false;
    const int64_t n = node.op == "Gemm" && node.attrs.get_int("transB", 0) ? w.shape[0] : w.shape[1];
    return n == out.back() && (!has_input(node, 2) || graph.constants.at(node.inputs[2]).elements() == n);
  }

  // Follows `scale` of `tensor` back to its absorber; fills site->absorber and path. nullopt if none is reached.
  std::optional<BroadcastScale> trace(std::string tensor, BroadcastScale scale, SmoothingSite* site) const {
    for (;;) {
      auto p = producers.find(tensor);
      if (p == producers.end()) return std::nullopt;
      const Node& node = graph.nodes[p->second];
      if (absorbs(node, scale)) {
        site->absorber = node.name;
        std::reverse(site->path.begin(), site->path.end());
        return scale;
      }
      site->path.push_back(node.name);
      const Shape& out = graph.tensor(node.outputs[0]).shape;
      std::string input = node.inputs.empty() ? "" : node.inputs[0];
      if (node.op == "Transpose") {
        scale = transpose_back(scale, node.attrs.get_ints("perm"));
      } else if (node.op == "Reshape") {
        std::optional<BroadcastScale> in = reshape_back(scale, out, graph.tensor(input).shape);
        if (!in) return std::nullopt;
        scale = *in;
      } else if (node.op == "MatMul" && has_input(node, 1) && !graph.is_constant(node.inputs[1]) &&
                 !graph.is_constant(node.inputs[0]) && !node.attrs.has("act") && !has_input(node, 2)) {
        // out[..., i, d] = sum_j A[..., i, j] B[..., j, d]: a scale constant along i is one of B's columns.
        input = node.inputs[1];
        const Shape& b = graph.tensor(input).shape;
        if (out.size() < 2 || b.size() != out.size() || scale.shape[out.size() - 2] != 1 || input == node.inputs[0])
          return std::nullopt;
        for (size_t d = 0; d + 2 < out.size(); ++d)
          if (scale.shape[d] != 1 && b[d] != out[d]) return std::nullopt;
      } else if (auto range = last_axis_slice(node)) {
        const Shape& in = graph.tensor(input).shape;
        if (!scale.last_axis_only(out)) return std::nullopt;
        // The other readers of the sliced tensor must be Slices of other columns, which the scale leaves as they are.
        if (graph_output(input)) return std::nullopt;
        for (size_t reader : consumers.at(input)) {
          if (reader == p->second) continue;
          auto other = last_axis_slice(graph.nodes[reader]);
          const bool overlap = other && other->first < range->second && range->first < other->second;
          if (!other || graph.nodes[reader].inputs[0] != input || overlap) return std::nullopt;
        }
        if (range->second - range->first != static_cast<int64_t>(scale.values.size())) return std::nullopt;
        BroadcastScale wide{Shape(in.size(), 1), std::vector<float>(static_cast<size_t>(in.back()), 1.0f)};
        wide.shape.back() = in.back();
        std::copy(scale.values.begin(), scale.values.end(), wide.values.begin() + range->first);
        scale = wide;
        tensor = input;
        continue;  // readers checked above
      } else {
        return std::nullopt;
      }
      if (!only_reader(input, p->second)) return std::nullopt;
      tensor = input;
    }
  }
};

bool linear_reader(const Graph& graph, const Node& node, const std::string& tensor) {
  if (node.inputs.empty() || node.inputs[0] != tensor || !has_input(node, 1) || !graph.is_constant(node.inputs[1]))
    return false;
  if (std::count(node.inputs.begin(), node.inputs.end(), tensor) != 1) return false;
  const Constant& w = graph.constants.at(node.inputs[1]);
  if (w.shape.size() != 2) return false;
  if (node.op == "MatMul") return true;
  return node.op == "Gemm" && node.attrs.get_int("transA", 0) == 0;
}

// Input channel c's weight range in a linear reader, relative to the largest weight of each output channel.
void weight_columns(const Graph& graph, const Node& node, std::vector<double>* columns) {
  const Constant& w = graph.constants.at(node.inputs[1]);
  const bool k_first = !(node.op == "Gemm" && node.attrs.get_int("transB", 0));  // [K, N], else [N, K]
  const int64_t k = k_first ? w.shape[0] : w.shape[1], n = k_first ? w.shape[1] : w.shape[0];
  const float* data = w.data<float>();
  auto at = [&](int64_t in, int64_t out) { return std::fabs(data[k_first ? in * n + out : out * k + in]); };
  for (int64_t o = 0; o < n; ++o) {
    double row_max = 0;
    for (int64_t i = 0; i < k; ++i) row_max = std::max(row_max, static_cast<double>(at(i, o)));
    if (row_max == 0) continue;
    for (int64_t i = 0; i < k; ++i)
      (*columns)[static_cast<size_t>(i)] = std::max((*columns)[static_cast<size_t>(i)], at(i, o) / row_max);
  }
}

// Multiplies the reader's weight rows for input channel c by factor[c].
void scale_weight_inputs(Graph& graph, Node& node, const std::vector<float>& factor) {
  const Constant& w = graph.constants.at(node.inputs[1]);
  const bool k_first = !(node.op == "Gemm" && node.attrs.get_int("transB", 0));
  const size_t k = static_cast<size_t>(k_first ? w.shape[0] : w.shape[1]);
  std::vector<float> values = w.as_floats();
  for (size_t i = 0; i < values.size(); ++i) values[i] *= factor[k_first ? i / (values.size() / k) : i % k];
  replace_constant(graph, node, 1, values);
}

// Multiplies the absorber's output channel c by scale[c] through its constants.
void scale_absorber_outputs(Graph& graph, Node& node, const std::vector<float>& scale) {
  if (node.op == "LayerNormalization") {
    for (size_t input : {size_t{1}, size_t{2}}) {
      if (!has_input(node, input)) continue;
      std::vector<float> values = graph.constants.at(node.inputs[input]).as_floats();
      for (size_t c = 0; c < values.size(); ++c) values[c] *= scale[c];
      replace_constant(graph, node, input, values);
    }
    return;
  }
  const Constant& w = graph.constants.at(node.inputs[1]);
  const bool n_last = !(node.op == "Gemm" && node.attrs.get_int("transB", 0));  // [K, N], else [N, K]
  const size_t n = scale.size();
  std::vector<float> values = w.as_floats();
  for (size_t i = 0; i < values.size(); ++i) values[i] *= scale[n_last ? i % n : i / (values.size() / n)];
  replace_constant(graph, node, 1, values);
  if (has_input(node, 2)) {
    std::vector<float> bias = graph.constants.at(node.inputs[2]).as_floats();
    for (size_t c = 0; c < n; ++c) bias[c] *= scale[c];
    replace_constant(graph, node, 2, bias);
  }
}

size_t node_index(const Graph& graph, const std::string& name) {
  for (size_t i = 0; i < graph.nodes.size(); ++i)
    if (graph.nodes[i].name == name) return i;
  throw Error("smoothing: no node named " + name);
}

}  // namespace

std::vector<SmoothingSite> find_smoothing_sites(const Graph& graph) {
  const Tracer tracer(graph);
  std::vector<SmoothingSite> sites;
  std::set<std::string> absorbers;
  for (const auto& [tensor, readers] : tracer.consumers) {
    if (graph.is_constant(tensor) || tracer.graph_output(tensor)) continue;
    SmoothingSite site{tensor, "", {}, {}};
    bool all_linear = !readers.empty();
    for (size_t r : readers) {
      all_linear = all_linear && linear_reader(graph, graph.nodes[r], tensor);
      site.readers.push_back(graph.nodes[r].name);
    }
    const Shape& shape = graph.tensor(tensor).shape;
    if (!all_linear || shape.empty() || shape.back() <= 0) continue;  // the channel count must be known
    BroadcastScale unit{Shape(shape.size(), 1), std::vector<float>(static_cast<size_t>(shape.back()), 1.0f)};
    unit.shape.back() = shape.back();
    // One site per absorber: a second one would scale the same constants twice from ranges measured once.
    if (tracer.trace(tensor, unit, &site) && absorbers.insert(site.absorber).second) sites.push_back(site);
  }
  return sites;
}

SmoothingReport smooth_linear_inputs(Graph& graph, const std::vector<std::string>& images, double alpha,
                                     const std::function<void(size_t, size_t)>& progress) {
  std::vector<SmoothingSite> sites = find_smoothing_sites(graph);
  SmoothingReport report;
  if (sites.empty()) return report;
  // Per-channel ranges over the last axis, widened to include 0.
  std::vector<std::string> tensors;
  for (const SmoothingSite& site : sites) tensors.push_back(site.tensor);
  const std::map<std::string, ChannelRanges> ranges =
      collect_channel_ranges(graph, tensors, images, progress, ChannelAxis::last);

  const Tracer tracer(graph);
  for (const SmoothingSite& site : sites) {
    const ChannelRanges& r = ranges.at(site.tensor);
    std::vector<double> range(r.max.size()), columns(r.max.size(), 0.0);
    for (size_t c = 0; c < range.size(); ++c) range[c] = static_cast<double>(r.max[c]) - r.min[c];
    for (const std::string& reader : site.readers)
      weight_columns(graph, graph.nodes[node_index(graph, reader)], &columns);
    const std::vector<float> s = balanced_scales(range, columns, alpha);

    // The scale as the absorber's output sees it, then applied there and divided out of the readers.
    const Shape& shape = graph.tensor(site.tensor).shape;
    BroadcastScale at_tensor{Shape(shape.size(), 1), s};
    at_tensor.shape.back() = shape.back();
    SmoothingSite traced{site.tensor, "", {}, {}};
    std::optional<BroadcastScale> at_absorber = tracer.trace(site.tensor, at_tensor, &traced);
    if (!at_absorber || traced.absorber != site.absorber)
      throw Error("smoothing of " + site.tensor + ": the scale no longer reaches " + site.absorber);
    scale_absorber_outputs(graph, graph.nodes[node_index(graph, site.absorber)], at_absorber->values);
    std::vector<float> inverse(s.size());
    for (size_t c = 0; c < s.size(); ++c) inverse[c] = 1.0f / s[c];
    for (const std::string& reader : site.readers)
      scale_weight_inputs(graph, graph.nodes[node_index(graph, reader)], inverse);

    std::vector<double> after(range.size());
    for (size_t c = 0; c < range.size(); ++c) after[c] = range[c] * s[c];
    report.spread_before += channel_spread(range);
    report.spread_after += channel_spread(after);
    ++report.sites;
  }
  report.spread_before /= static_cast<double>(report.sites);
  report.spread_after /= static_cast<double>(report.sites);
  return report;
}

}  // namespace octet::quant
