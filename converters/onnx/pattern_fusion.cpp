#include "converters/onnx/pattern_fusion.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>

#include "graph/fused_activation.h"
#include "graph/ops.h"

namespace octet::onnx {
namespace {

// Like the passes in passes.cpp: one rewrite at a time, then look again (graphs have a few hundred nodes).

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

class Matcher {
 public:
  explicit Matcher(Graph& graph) : g_(graph), producers_(graph.producers()), consumers_(graph.consumers()) {}

  // The node producing `tensor` if it has op `op`, else nullptr.
  const Node* producer(const std::string& tensor, const char* op) const {
    auto it = producers_.find(tensor);
    if (it == producers_.end() || g_.nodes[it->second].op != op) return nullptr;
    return &g_.nodes[it->second];
  }
  size_t readers(const std::string& tensor) const {
    if (contains(g_.outputs, tensor)) return 1000;  // a graph output must stay
    auto it = consumers_.find(tensor);
    return it == consumers_.end() ? 0 : it->second.size();
  }
  // The single value of a one-element f32 constant.
  std::optional<float> scalar(const std::string& tensor) const {
    const Constant* c = g_.find_constant(tensor);
    if (!c || c->dtype != DType::f32 || c->elements() != 1) return std::nullopt;
    return c->data<float>()[0];
  }
  bool is_scalar(const std::string& tensor, float value) const {
    std::optional<float> v = scalar(tensor);
    return v && std::fabs(*v - value) <= 1e-6f * std::fabs(value);
  }
  // For a binary node: the operand other than `tensor`, or nullopt when `tensor` is not an operand.
  static std::optional<std::string> other(const Node& node, const std::string& tensor) {
    if (node.inputs.size() != 2) return std::nullopt;
    if (node.inputs[0] == tensor) return node.inputs[1];
    if (node.inputs[1] == tensor) return node.inputs[0];
    return std::nullopt;
  }
  size_t index_of(const Node* node) const { return static_cast<size_t>(node - g_.nodes.data()); }

  // Replaces the nodes `dead` by `fused`, placed where the last of them was (its inputs are all computed by
  // then, and the fused output is read only after it).
  void replace(const std::vector<const Node*>& dead, Node fused) {
    std::set<size_t> indices;
    for (const Node* n : dead) indices.insert(index_of(n));
    size_t last = *indices.rbegin();
    for (const Node* n : dead)
      for (const std::string& o : n->outputs)
        if (o != fused.outputs[0]) g_.tensors.erase(o);
    g_.nodes[last] = std::move(fused);
    for (auto it = indices.rbegin(); it != indices.rend(); ++it)
      if (*it != last) g_.nodes.erase(g_.nodes.begin() + static_cast<long>(*it));
  }

  Graph& g_;
  std::map<std::string, size_t> producers_;
  std::map<std::string, std::vector<size_t>> consumers_;
};

Node make_node(const Node& named_after, const std::string& op, std::vector<std::string> inputs,
               const std::string& output) {
  Node n;
  n.name = named_after.name;
  n.op = op;
  n.inputs = std::move(inputs);
  n.outputs = {output};
  return n;
}

// Mul(x, HardSigmoid(x)) with alpha 1/6, beta 1/2.
bool fuse_one_hard_swish(Graph& graph) {
  Matcher m(graph);
  for (const Node& mul : graph.nodes) {
    if (mul.op != "Mul") continue;
    for (size_t side = 0; side < 2; ++side) {
      const Node* hs = m.producer(mul.inputs[side], "HardSigmoid");
      if (!hs || hs->inputs[0] != mul.inputs[1 - side] || m.readers(hs->outputs[0]) != 1) continue;
      if (std::fabs(hs->attrs.get_float("alpha", 0.2f) - 1.0f / 6) > 1e-6f ||
          std::fabs(hs->attrs.get_float("beta", 0.5f) - 0.5f) > 1e-6f)
        continue;
      m.replace({hs, &mul}, make_node(mul, "HardSwish", {hs->inputs[0]}, mul.outputs[0]));
      return true;
    }
  }
  return false;
}

// y = Mul(Mul(x, Add(Erf(x / sqrt2), 1)), 0.5) or Mul(Mul(x, 0.5), Add(...)); x / sqrt2 may be x * (1/sqrt2).
bool fuse_one_gelu(Graph& graph) {
  Matcher m(graph);
  for (const Node& erf : graph.nodes) {
    if (erf.op != "Erf" || m.readers(erf.outputs[0]) != 1) continue;
    const Node* scale = m.producer(erf.inputs[0], "Div");
    bool scaled = scale && m.is_scalar(scale->inputs[1], 1.41421356f);
    if (!scaled) {
      scale = m.producer(erf.inputs[0], "Mul");
      scaled = scale && (m.is_scalar(scale->inputs[1], 0.70710678f) || m.is_scalar(scale->inputs[0], 0.70710678f));
    }
    if (!scaled || m.readers(scale->outputs[0]) != 1) continue;
    std::string x = scale->op == "Div" || !m.scalar(scale->inputs[0]) ? scale->inputs[0] : scale->inputs[1];
    // The Add of 1, its only reader.
    auto add_it = m.consumers_.find(erf.outputs[0]);
    const Node& add = graph.nodes[add_it->second[0]];
    std::optional<std::string> one = Matcher::other(add, erf.outputs[0]);
    if (add.op != "Add" || !one || !m.is_scalar(*one, 1.0f) || m.readers(add.outputs[0]) != 1) continue;
    const Node& mul1 = graph.nodes[m.consumers_.at(add.outputs[0])[0]];
    std::optional<std::string> mul1_other = Matcher::other(mul1, add.outputs[0]);
    if (mul1.op != "Mul" || !mul1_other) continue;
    std::vector<const Node*> dead = {scale, &erf, &add, &mul1};
    std::string y;
    if (*mul1_other == x) {  // x * (erf + 1), then * 0.5
      if (m.readers(mul1.outputs[0]) != 1) continue;
      const Node& half = graph.nodes[m.consumers_.at(mul1.outputs[0])[0]];
      std::optional<std::string> h = Matcher::other(half, mul1.outputs[0]);
      if (half.op != "Mul" || !h || !m.is_scalar(*h, 0.5f)) continue;
      dead.push_back(&half);
      y = half.outputs[0];
    } else {  // (x * 0.5) * (erf + 1)
      const Node* half = m.producer(*mul1_other, "Mul");
      if (!half || m.readers(half->outputs[0]) != 1) continue;
      std::optional<std::string> h = Matcher::other(*half, x);
      if (!h || !m.is_scalar(*h, 0.5f)) continue;
      dead.push_back(half);
      y = mul1.outputs[0];
    }
    size_t last = 0;
    for (const Node* n : dead) last = std::max(last, m.index_of(n));
    Node gelu = make_node(graph.nodes[last], "Gelu", {x}, y);
    gelu.attrs.set("approximate", std::string("none"));
    m.replace(dead, gelu);
    return true;
  }
  return false;
}

// The axes of a ReduceMean if they are the trailing dims of a tensor of rank `rank` (kept), else nullopt.
std::optional<int64_t> trailing_axis(const Node& reduce, int64_t rank) {
  if (reduce.attrs.get_int("keepdims", 1) == 0) return std::nullopt;
  std::vector<int64_t> axes = reduce.attrs.get_ints("axes");
  if (axes.empty()) return std::nullopt;
  for (int64_t& a : axes) a = a < 0 ? a + rank : a;
  std::sort(axes.begin(), axes.end());
  for (size_t i = 0; i < axes.size(); ++i)
    if (axes[i] != rank - static_cast<int64_t>(axes.size()) + static_cast<int64_t>(i)) return std::nullopt;
  return axes[0];
}

// d = x - ReduceMean(x); n = d / Sqrt(ReduceMean(Pow(d, 2)) + eps); optional * gamma, + beta.
bool fuse_one_layer_norm(Graph& graph) {
  Matcher m(graph);
  for (const Node& sub : graph.nodes) {
    if (sub.op != "Sub") continue;
    const Node* mean = m.producer(sub.inputs[1], "ReduceMean");
    if (!mean || mean->inputs[0] != sub.inputs[0] || m.readers(mean->outputs[0]) != 1) continue;
    auto info = graph.tensors.find(sub.inputs[0]);
    if (info == graph.tensors.end() || info->second.shape.empty()) continue;
    int64_t rank = static_cast<int64_t>(info->second.shape.size());
    std::optional<int64_t> axis = trailing_axis(*mean, rank);
    if (!axis || m.readers(sub.outputs[0]) != 2) continue;
    const Node *pow = nullptr, *div = nullptr;
    for (size_t i : m.consumers_.at(sub.outputs[0])) {
      const Node& c = graph.nodes[i];
      if (c.op == "Pow" && c.attrs.get_float("exponent", 0) == 2.0f) pow = &c;
      if (c.op == "Div" && c.inputs[0] == sub.outputs[0]) div = &c;
    }
    if (!pow || !div || m.readers(pow->outputs[0]) != 1) continue;
    const Node& var = graph.nodes[m.consumers_.at(pow->outputs[0])[0]];
    if (var.op != "ReduceMean" || trailing_axis(var, rank) != axis || m.readers(var.outputs[0]) != 1) continue;
    const Node& add = graph.nodes[m.consumers_.at(var.outputs[0])[0]];
    std::optional<std::string> eps_name = Matcher::other(add, var.outputs[0]);
    std::optional<float> eps = eps_name ? m.scalar(*eps_name) : std::nullopt;
    if (add.op != "Add" || !eps || m.readers(add.outputs[0]) != 1) continue;
    const Node& sqrt = graph.nodes[m.consumers_.at(add.outputs[0])[0]];
    if (sqrt.op != "Sqrt" || m.readers(sqrt.outputs[0]) != 1 || div->inputs[1] != sqrt.outputs[0]) continue;
    std::vector<const Node*> dead = {mean, &sub, pow, &var, &add, &sqrt, div};
    int64_t inner = 1;
    for (int64_t d = *axis; d < rank; ++d) inner *= info->second.shape[d];
    // Optional affine part: Mul by a constant gamma, then Add of a constant beta (each of `inner` values).
    auto affine = [&](const std::string& t, const char* op) -> std::pair<const Node*, std::string> {
      if (m.readers(t) != 1) return {nullptr, ""};
      const Node& n = graph.nodes[m.consumers_.at(t)[0]];
      std::optional<std::string> c = Matcher::other(n, t);
      const Constant* value = c ? graph.find_constant(*c) : nullptr;
      if (n.op != op || !value || value->dtype != DType::f32 || value->elements() != inner) return {nullptr, ""};
      // The constant must broadcast over the normalized dims only: its non-1 dims are trailing.
      return {&n, *c};
    };
    std::string y = div->outputs[0];
    std::vector<std::string> inputs = {sub.inputs[0]};
    auto [gamma, gamma_name] = affine(y, "Mul");
    std::string scale_name = gamma_name;
    if (gamma) {
      dead.push_back(gamma);
      y = gamma->outputs[0];
    } else {
      scale_name = div->name + "/ones";
      graph.constants[scale_name] =
          Constant::from_floats({inner}, std::vector<float>(static_cast<size_t>(inner), 1.0f));
    }
    inputs.push_back(scale_name);
    auto [beta, beta_name] = affine(y, "Add");
    if (beta) {
      dead.push_back(beta);
      y = beta->outputs[0];
      inputs.push_back(beta_name);
    }
    size_t last = 0;
    for (const Node* n : dead) last = std::max(last, m.index_of(n));
    Node ln = make_node(graph.nodes[last], "LayerNormalization", inputs, y);
    ln.attrs.set("axis", *axis);
    ln.attrs.set("epsilon", *eps);
    m.replace(dead, ln);
    return true;
  }
  return false;
}

// MatMul(x, W) with W a 2-D constant [K, N], read only by Add(., b) with b a constant of N values (any rank
// whose non-1 dim is the last): the bias becomes the MatMul's third input, added by the matmul itself.
bool fuse_one_matmul_bias(Graph& graph) {
  Matcher m(graph);
  for (const Node& mm : graph.nodes) {
    if (mm.op != "MatMul" || mm.inputs.size() != 2) continue;
    const Constant* w = graph.find_constant(mm.inputs[1]);
    if (!w || w->shape.size() != 2 || graph.is_constant(mm.inputs[0]) || m.readers(mm.outputs[0]) != 1) continue;
    const Node& add = graph.nodes[m.consumers_.at(mm.outputs[0])[0]];
    std::optional<std::string> b = Matcher::other(add, mm.outputs[0]);
    const Constant* bias = b ? graph.find_constant(*b) : nullptr;
    if (add.op != "Add" || !bias || bias->dtype != DType::f32 || bias->elements() != w->shape[1] ||
        bias->shape.empty() || bias->shape.back() != w->shape[1])
      continue;
    auto out = graph.tensors.find(mm.outputs[0]);
    if (out != graph.tensors.end() && bias->shape.size() > out->second.shape.size())
      continue;  // would broadcast the output
    std::string name = mm.name + "/bias";
    graph.constants[name] = Constant::from_floats({w->shape[1]}, bias->as_floats());
    Node fused = make_node(mm, "MatMul", {mm.inputs[0], mm.inputs[1], name}, add.outputs[0]);
    m.replace({&mm, &add}, fused);
    return true;
  }
  return false;
}

// A MatMul with constant 2-D weights (a linear layer) whose output only an activation reads: the activation
// becomes its `act`, applied while the matmul writes (GELU after a Transformer's first MLP layer).
bool fuse_one_matmul_activation(Graph& graph) {
  Matcher m(graph);
  for (const Node& mm : graph.nodes) {
    if (mm.op != "MatMul" || mm.attrs.has("act") || !graph.is_constant(mm.inputs[1]) || m.readers(mm.outputs[0]) != 1)
      continue;
    const Node& act = graph.nodes[m.consumers_.at(mm.outputs[0])[0]];
    std::optional<ActivationNode> activation = activation_of(act);
    if (!activation) continue;
    Node fused = mm;
    write_fused_activation(fused, "act", activation->kind, activation->alpha, activation->beta);
    fused.outputs = act.outputs;
    m.replace({&mm, &act}, fused);
    return true;
  }
  return false;
}

// The columns [begin, end) of its input's last axis that a Slice reads with step 1, or nullopt.
std::optional<std::pair<int64_t, int64_t>> last_axis_columns(const Node& slice, int64_t rank, int64_t columns) {
  std::vector<int64_t> starts = slice.attrs.get_ints("starts"), ends = slice.attrs.get_ints("ends"),
                       axes = slice.attrs.get_ints("axes", {0}), steps = slice.attrs.get_ints("steps", {1});
  if (starts.size() != 1 || ends.size() != 1 || axes.size() != 1 || steps.size() != 1 || steps[0] != 1)
    return std::nullopt;
  if (axes[0] != -1 && axes[0] != rank - 1) return std::nullopt;
  auto clamp = [&](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + columns : v, 0, columns); };
  return std::make_pair(clamp(starts[0]), clamp(ends[0]));
}

// Div(t, c) or Mul(t, c), c a scalar constant, where t is a linear layer's output (MatMul with constant 2-D
// weights and optional bias, no activation) seen through data movement (Reshape, Transpose, Squeeze, Unsqueeze,
// Flatten) and optionally one Slice of its columns: the factor scales those columns of the weights and bias
// instead, and the Div goes. Attention's q / sqrt(d) after the joint q, k, v projection is this (the Slice picks
// q's columns; k's and v's Slices read other columns). Each tensor on the way must have one reader, and the
// projection's other readers must be Slices of other columns.
bool fold_one_scale_into_linear(Graph& graph) {
  static const std::set<std::string> movement = {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten"};
  Matcher m(graph);
  for (const Node& scale : graph.nodes) {
    if ((scale.op != "Div" && scale.op != "Mul") || scale.inputs.size() != 2) continue;
    std::optional<float> c = m.scalar(scale.inputs[1]);
    if (!c || !std::isfinite(*c) || *c == 0 || graph.is_constant(scale.inputs[0])) continue;
    if (contains(graph.outputs, scale.outputs[0])) continue;
    const float factor = scale.op == "Div" ? 1.0f / *c : *c;
    // Up through single-reader data movement.
    std::string t = scale.inputs[0];
    auto from = m.producers_.find(t);
    while (from != m.producers_.end() && movement.count(graph.nodes[from->second].op) && m.readers(t) == 1) {
      t = graph.nodes[from->second].inputs[0];
      from = m.producers_.find(t);
    }
    if (from == m.producers_.end() || m.readers(t) != 1) continue;
    const Node* slice = graph.nodes[from->second].op == "Slice" ? &graph.nodes[from->second] : nullptr;
    const std::string projected = slice ? slice->inputs[0] : t;
    const Node* mm = m.producer(projected, "MatMul");
    if (!mm || mm->attrs.has("act") || !graph.tensors.count(projected)) continue;
    const Constant* w = graph.find_constant(mm->inputs[1]);
    const Constant* b = mm->inputs.size() > 2 && !mm->inputs[2].empty() ? graph.find_constant(mm->inputs[2]) : nullptr;
    if (!w || w->dtype != DType::f32 || w->shape.size() != 2 || (mm->inputs.size() > 2 && !b)) continue;
    const int64_t rows = w->shape[0], columns = w->shape[1];
    const int64_t rank = static_cast<int64_t>(graph.tensors.at(projected).shape.size());
    std::pair<int64_t, int64_t> mine{0, columns};
    if (slice) {
      auto cols = last_axis_columns(*slice, rank, columns);
      if (!cols) continue;
      mine = *cols;
    }
    // Every other reader of the projection: a Slice of columns outside `mine`.
    bool alone = !contains(graph.outputs, projected);
    for (size_t r : m.consumers_.at(projected)) {
      const Node& reader = graph.nodes[r];
      if (slice && &reader == slice) continue;
      auto cols = reader.op == "Slice" && reader.inputs[0] == projected ? last_axis_columns(reader, rank, columns)
                                                                        : std::nullopt;
      alone = alone && slice && cols && (cols->second <= mine.first || cols->first >= mine.second);
    }
    if (!alone) continue;
    std::vector<float> weights = w->as_floats();
    for (int64_t k = 0; k < rows; ++k)
      for (int64_t n = mine.first; n < mine.second; ++n) weights[static_cast<size_t>(k * columns + n)] *= factor;
    Node scaled = *mm;
    scaled.inputs[1] = mm->inputs[1] + "/scaled";
    while (graph.constants.count(scaled.inputs[1])) scaled.inputs[1] += "'";
    graph.constants[scaled.inputs[1]] = Constant::from_floats(w->shape, weights);
    if (b) {
      std::vector<float> bias = b->as_floats();
      for (int64_t n = mine.first; n < mine.second; ++n) bias[static_cast<size_t>(n)] *= factor;
      scaled.inputs[2] = mm->inputs[2] + "/scaled";
      while (graph.constants.count(scaled.inputs[2])) scaled.inputs[2] += "'";
      graph.constants[scaled.inputs[2]] = Constant::from_floats(b->shape, bias);
    }
    // The Div's readers read its input; the projection keeps its place and name.
    const std::string gone = scale.outputs[0], kept = scale.inputs[0];
    graph.nodes[m.index_of(mm)] = scaled;
    for (Node& node : graph.nodes)
      for (std::string& in : node.inputs)
        if (in == gone) in = kept;
    graph.tensors.erase(gone);
    graph.nodes.erase(graph.nodes.begin() + static_cast<long>(m.index_of(&scale)));
    return true;
  }
  return false;
}

}  // namespace

void fuse_matmul_activation(Graph& graph) {
  while (fuse_one_matmul_activation(graph)) {
  }
}

void fuse_activation_patterns(Graph& graph) {
  while (fuse_one_hard_swish(graph) || fuse_one_gelu(graph)) {
  }
}

void fuse_layer_norm_pattern(Graph& graph) {
  while (fuse_one_layer_norm(graph)) {
  }
}

void fuse_matmul_bias(Graph& graph) {
  while (fuse_one_matmul_bias(graph)) {
  }
}

void fold_scale_into_linear(Graph& graph) {
  while (fold_one_scale_into_linear(graph)) {
  }
}

}  // namespace octet::onnx
