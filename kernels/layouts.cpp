// Activation layouts of a whole graph (see kernel.h's layout convention): which physical order each rank-4
// activation gets. Feature maps of convolutions, pools and batch norms are channels-last; a rank-4 tensor that
// only Transformer-style ops touch (ConvNeXt's blocks after their permute, attention heads) keeps the physical
// order of what it was computed from, so a permute is a plain copy and the matmuls, layer norms and softmaxes
// after it see dense rows (with channels-last everywhere they saw strided rows: ConvNeXt's linear layers had no
// 2-D view and its layer norms ran the reference).
#include <algorithm>
#include <numeric>

#include "graph/ops.h"
#include "kernels/kernel.h"

namespace octet::kernels {
namespace {

using Order = std::vector<size_t>;  // dims from outermost to innermost

Order channels_last() { return {0, 2, 3, 1}; }
Order row_major(size_t rank) {
  Order o(rank);
  std::iota(o.begin(), o.end(), 0);
  return o;
}

// The physical order of `d`: dims by decreasing stride, equal strides (size-1 dims) in row-major order.
Order order_of(const TensorDesc& d) {
  Order o = row_major(d.dims.size());
  std::sort(o.begin(), o.end(),
            [&](size_t a, size_t b) { return d.strides[a] != d.strides[b] ? d.strides[a] > d.strides[b] : a < b; });
  return o;
}

Strides strides_in(const Shape& dims, const Order& order) {
  Strides s(dims.size(), 1);
  int64_t step = 1;
  for (size_t k = order.size(); k-- > 0;) {
    s[order[k]] = step;
    step *= std::max<int64_t>(dims[order[k]], 1);
  }
  return s;
}

}  // namespace

std::map<std::string, TensorDesc> plan_activation_layouts(const Graph& graph,
                                                          const std::map<std::string, TensorInfo>& infos) {
  std::map<std::string, TensorDesc> descs;
  std::map<std::string, bool> spatial_reader;
  for (const Node& node : graph.nodes)
    if (works_channels_last(node.op))
      for (const std::string& in : node.inputs) spatial_reader[in] = true;
  auto place = [&](const std::string& name, const Order* order) {
    const TensorInfo& info = infos.at(name);
    TensorDesc d;
    d.dtype = info.dtype;
    d.dims = info.shape;
    d.quant = info.quant;
    d.strides = graph.is_constant(name) || info.shape.size() != 4 ? dense_strides(info.shape)
                : order                                           ? strides_in(info.shape, *order)
                                                                  : strides_in(info.shape, channels_last());
    descs[name] = d;
  };
  for (const auto& kv : infos)
    if (graph.is_constant(kv.first) || kv.second.shape.size() != 4) place(kv.first, nullptr);
  for (const std::string& in : graph.inputs) place(in, nullptr);
  for (const Node& node : graph.nodes) {
    const OpSchema* schema = find_op_schema(node.op);
    const std::string family = schema ? schema->kernel_family : "";
    for (const std::string& out : node.outputs) {
      if (out.empty() || !infos.count(out) || infos.at(out).shape.size() != 4 || descs.count(out)) continue;
      // The rank-4 activation input whose order the output follows: one of the output's shape (not a
      // broadcast operand such as a squeeze-excitation scale), else the first.
      const TensorDesc* from = nullptr;
      for (const std::string& in : node.inputs) {
        if (in.empty() || graph.is_constant(in) || !descs.count(in) || descs.at(in).dims.size() != 4) continue;
        if (!from || (from->dims != infos.at(out).shape && descs.at(in).dims == infos.at(out).shape))
          from = &descs.at(in);
      }
      if (works_channels_last(node.op) || spatial_reader[out] || !from) {
        place(out, nullptr);
      } else if (family == "transpose") {
        // Output dim k is input dim perm[k]: the input's physical order, renamed, makes the copy an identity.
        const Order in_order = order_of(*from);
        std::vector<int64_t> perm = node.attrs.get_ints("perm", {3, 2, 1, 0});
        Order order;
        for (size_t d : in_order)
          order.push_back(static_cast<size_t>(std::find(perm.begin(), perm.end(), int64_t(d)) - perm.begin()));
        place(out, &order);
      } else if (family == "copy" && infos.at(out).shape != from->dims) {
        const Order dense = row_major(4);  // a reshape: row-major, as its readers see the elements
        place(out, &dense);
      } else {
        const Order order = order_of(*from);
        place(out, &order);
      }
    }
  }
  for (const auto& kv : infos)
    if (!descs.count(kv.first)) place(kv.first, nullptr);
  return descs;
}

}  // namespace octet::kernels
