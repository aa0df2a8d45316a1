#include "converters/onnx/passes.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <set>

#include "graph/fused_activation.h"
#include "graph/shape_inference.h"

namespace octet::onnx {
namespace {

// Each pass applies one rewrite at a time and then looks again: node indices and the producer/consumer maps
// stay simple at the cost of quadratic time, which is nothing for graphs of a few hundred nodes.

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Every read and write of tensor `from` becomes `to`.
void rename_tensor(Graph& graph, const std::string& from, const std::string& to) {
  for (Node& node : graph.nodes) {
    std::replace(node.inputs.begin(), node.inputs.end(), from, to);
    std::replace(node.outputs.begin(), node.outputs.end(), from, to);
  }
}

bool name_in_use(const Graph& graph, const std::string& name) {
  if (graph.is_constant(name) || graph.tensors.count(name)) return true;
  for (const Node& node : graph.nodes)
    if (contains(node.outputs, name) || contains(node.inputs, name)) return true;
  return false;
}

std::string fresh_name(const Graph& graph, const std::string& base) {
  std::string name = base;
  for (int i = 1; name_in_use(graph, name); ++i) name = base + "_" + std::to_string(i);
  return name;
}

// The index of the only node reading `tensor`; nullopt when several or none read it, or it is a graph output.
std::optional<size_t> only_consumer(const Graph& graph, const std::string& tensor) {
  if (contains(graph.outputs, tensor)) return std::nullopt;
  auto consumers = graph.consumers();
  auto it = consumers.find(tensor);
  if (it == consumers.end() || it->second.size() != 1) return std::nullopt;
  return it->second[0];
}

bool has_sum(const Node& conv) { return conv.inputs.size() > 3 && !conv.inputs[3].empty(); }

bool remove_one_identity(Graph& graph) {
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (graph.nodes[i].op != "Identity") continue;
    std::string input = graph.nodes[i].inputs[0], output = graph.nodes[i].outputs[0];
    if (!contains(graph.outputs, output)) {
      graph.nodes.erase(graph.nodes.begin() + static_cast<long>(i));
      rename_tensor(graph, output, input);
      return true;
    }
    bool producer_renamable =
        !contains(graph.inputs, input) && !graph.is_constant(input) && !contains(graph.outputs, input);
    if (producer_renamable) {
      graph.nodes.erase(graph.nodes.begin() + static_cast<long>(i));
      rename_tensor(graph, input, output);
      return true;
    }
  }
  return false;
}

// Per output channel c: weights * a[c], bias (bias - mean[c]) * a[c] + beta[c], a[c] = scale[c] / sqrt(var[c] + eps).
bool fold_one_batch_norm(Graph& graph) {
  auto producers = graph.producers();
  for (size_t b = 0; b < graph.nodes.size(); ++b) {
    const Node& bn = graph.nodes[b];
    if (bn.op != "BatchNormalization") continue;
    auto producer = producers.find(bn.inputs[0]);
    if (producer == producers.end() || !only_consumer(graph, bn.inputs[0])) continue;
    Node& conv = graph.nodes[producer->second];
    if (conv.op != "Conv" || conv.inputs.size() > 3 || conv.attrs.has("act")) continue;
    const Constant* weights = graph.find_constant(conv.inputs[1]);
    bool has_bias = conv.inputs.size() > 2 && !conv.inputs[2].empty();
    const Constant* bias = has_bias ? graph.find_constant(conv.inputs[2]) : nullptr;
    const Constant* params[4] = {};  // scale, beta, mean, var
    bool foldable = weights && weights->dtype == DType::f32 && (!has_bias || (bias && bias->dtype == DType::f32));
    for (int i = 0; foldable && i < 4; ++i) {
      params[i] = graph.find_constant(bn.inputs[i + 1]);
      foldable = params[i] && params[i]->dtype == DType::f32 && !weights->shape.empty() &&
                 params[i]->elements() == weights->shape[0];
    }
    if (!foldable) continue;
    std::vector<float> scale = params[0]->as_floats(), beta = params[1]->as_floats();
    std::vector<float> mean = params[2]->as_floats(), var = params[3]->as_floats();
    std::vector<float> w = weights->as_floats();
    std::vector<float> bias_values = has_bias ? bias->as_floats() : std::vector<float>(scale.size(), 0.0f);
    double epsilon = bn.attrs.get_float("epsilon", 1e-5f);
    size_t per_channel = w.size() / scale.size();
    for (size_t c = 0; c < scale.size(); ++c) {
      double a = scale[c] / std::sqrt(static_cast<double>(var[c]) + epsilon);
      for (size_t k = 0; k < per_channel; ++k) w[c * per_channel + k] = static_cast<float>(w[c * per_channel + k] * a);
      bias_values[c] = static_cast<float>((bias_values[c] - mean[c]) * a + beta[c]);
    }
    std::string weights_name = fresh_name(graph, conv.name + ".weight_bn_folded");
    graph.constants[weights_name] = Constant::from_floats(weights->shape, w);
    std::string bias_name = fresh_name(graph, conv.name + ".bias_bn_folded");
    graph.constants[bias_name] = Constant::from_floats({static_cast<int64_t>(bias_values.size())}, bias_values);
    conv.inputs = {conv.inputs[0], weights_name, bias_name};
    conv.outputs[0] = bn.outputs[0];
    graph.nodes.erase(graph.nodes.begin() + static_cast<long>(b));
    return true;
  }
  return false;
}

// Makes the activation reading `conv`'s output (its only consumer) the Conv's post-op: `act`, or `sum_act`
// when the Conv carries a residual sum (the sum is added after act, so a later activation follows the sum).
bool absorb_activation(Graph& graph, size_t conv_index) {
  std::string slot = has_sum(graph.nodes[conv_index]) ? "sum_act" : "act";
  if (graph.nodes[conv_index].attrs.has(slot)) return false;
  std::optional<size_t> consumer = only_consumer(graph, graph.nodes[conv_index].outputs[0]);
  if (!consumer) return false;
  std::optional<ActivationNode> activation = activation_of(graph.nodes[*consumer]);
  if (!activation) return false;
  Node& conv = graph.nodes[conv_index];
  write_fused_activation(conv, slot, activation->kind, activation->alpha, activation->beta);
  conv.outputs[0] = graph.nodes[*consumer].outputs[0];
  graph.nodes.erase(graph.nodes.begin() + static_cast<long>(*consumer));  // after conv_index: it reads its output
  return true;
}

bool fuse_one_sum(Graph& graph, const std::function<bool(const Node&)>& may_fuse) {
  auto producers = graph.producers();
  for (size_t a = 0; a < graph.nodes.size(); ++a) {
    const Node& add = graph.nodes[a];
    if (add.op != "Add") continue;
    // Of two Conv operands, the later Conv is the one whose partner may already be computed (ResNet's
    // downsample branch runs after the main branch's last Conv).
    std::optional<size_t> best_conv, best_side;
    for (size_t side = 0; side < 2; ++side) {
      const std::string &conv_output = add.inputs[side], &other = add.inputs[1 - side];
      auto producer = producers.find(conv_output);
      if (producer == producers.end()) continue;
      size_t c = producer->second;
      const Node& conv = graph.nodes[c];
      if (conv.op != "Conv" || has_sum(conv) || !only_consumer(graph, conv_output) || graph.is_constant(other))
        continue;
      if (may_fuse && !may_fuse(conv)) continue;
      auto other_producer = producers.find(other);
      bool computed_before =
          other_producer == producers.end() || other_producer->second < c;  // graph input, or earlier
      if (!computed_before || graph.tensor(conv_output).shape != graph.tensor(other).shape) continue;
      if (!best_conv || c > *best_conv) {
        best_conv = c;
        best_side = side;
      }
    }
    if (!best_conv) continue;
    Node& conv = graph.nodes[*best_conv];
    conv.inputs.resize(3);  // "" when the Conv has no bias
    conv.inputs.push_back(add.inputs[1 - *best_side]);
    conv.outputs[0] = add.outputs[0];
    graph.nodes.erase(graph.nodes.begin() + static_cast<long>(a));
    absorb_activation(graph, *best_conv);
    return true;
  }
  return false;
}

// A 1x1 Conv (stride 1, no padding, no post-op, no residual sum) whose output only a GlobalAveragePool reads:
// the mean over H and W commutes with a per-pixel linear map (mean(W x + b) = W mean(x) + b), so the pool runs
// first and the Conv on one pixel. The pool takes the Conv's place in the run order, the Conv the pool's.
bool pool_one_before_conv(Graph& graph, const std::function<bool(const Node&, const Node&)>& may_move) {
  for (size_t c = 0; c < graph.nodes.size(); ++c) {
    const Node& conv = graph.nodes[c];
    if (conv.op != "Conv" || has_sum(conv) || conv.attrs.has("act") || !graph.is_constant(conv.inputs[1])) continue;
    const Shape& w = graph.find_constant(conv.inputs[1])->shape;
    if (w.size() != 4 || w[2] != 1 || w[3] != 1) continue;
    bool pointwise = true;
    for (int64_t s : conv.attrs.get_ints("strides", {})) pointwise = pointwise && s == 1;
    for (int64_t p : conv.attrs.get_ints("pads", {})) pointwise = pointwise && p == 0;
    if (!pointwise) continue;  // (auto_pad gives a 1x1 stride-1 kernel no padding either)
    std::optional<size_t> g = only_consumer(graph, conv.outputs[0]);
    if (!g || graph.nodes[*g].op != "GlobalAveragePool") continue;
    if (may_move && !may_move(conv, graph.nodes[*g])) continue;
    Node pool = graph.nodes[*g], moved_conv = conv;
    std::string pooled = fresh_name(graph, conv.inputs[0] + "/pooled");
    graph.tensors.erase(conv.outputs[0]);
    pool.inputs[0] = conv.inputs[0];
    pool.outputs[0] = pooled;
    moved_conv.inputs[0] = pooled;
    moved_conv.outputs[0] = graph.nodes[*g].outputs[0];
    // Between the two positions nothing reads the Conv's output (the pool was its only reader).
    graph.nodes[c] = pool;
    graph.nodes[*g] = moved_conv;
    return true;
  }
  return false;
}

}  // namespace

void pool_before_pointwise_conv(Graph& graph, const std::function<bool(const Node&, const Node&)>& may_move) {
  while (pool_one_before_conv(graph, may_move)) {
  }
}

void remove_identities(Graph& graph) {
  while (remove_one_identity(graph)) {
  }
}

void fold_batch_norm(Graph& graph) {
  while (fold_one_batch_norm(graph)) {
  }
}

void fuse_conv_activation(Graph& graph) {
  for (size_t i = 0; i < graph.nodes.size(); ++i)
    if (graph.nodes[i].op == "Conv") absorb_activation(graph, i);
}

void fuse_conv_sum(Graph& graph, const std::function<bool(const Node&)>& may_fuse) {
  infer_symbolic_shapes(graph);  // operand shapes, to fuse only sums without broadcasting
  while (fuse_one_sum(graph, may_fuse)) {
  }
}

void eliminate_dead_code(Graph& graph) {
  std::set<std::string> read(graph.outputs.begin(), graph.outputs.end()), produced;
  std::vector<Node> live;
  for (auto node = graph.nodes.rbegin(); node != graph.nodes.rend(); ++node) {
    if (std::none_of(node->outputs.begin(), node->outputs.end(),
                     [&](const std::string& o) { return read.count(o) != 0; }))
      continue;
    // LayerNormalization's optional statistics outputs, when nothing reads them, are not computed at all.
    if (node->op == "LayerNormalization")
      while (node->outputs.size() > 1 && !read.count(node->outputs.back())) node->outputs.pop_back();
    read.insert(node->inputs.begin(), node->inputs.end());
    produced.insert(node->outputs.begin(), node->outputs.end());
    live.push_back(std::move(*node));
  }
  graph.nodes.assign(std::make_move_iterator(live.rbegin()), std::make_move_iterator(live.rend()));
  for (auto it = graph.constants.begin(); it != graph.constants.end();)
    it = read.count(it->first) ? std::next(it) : graph.constants.erase(it);
  for (auto it = graph.tensors.begin(); it != graph.tensors.end();)
    it = produced.count(it->first) || contains(graph.inputs, it->first) ? std::next(it) : graph.tensors.erase(it);
}

}  // namespace octet::onnx