#include "graph/model_format.h"
#include "graph/shape_inference.h"
#include "kernels/kernel.h"
#include "octet/octet.h"

namespace octet {

int64_t Tensor::elements() const { return shape_elements(shape); }

std::shared_ptr<const Model> Model::load(const std::string& path) { return from_graph(read_model(path)); }

std::shared_ptr<const Model> Model::from_graph(Graph graph) {
  // Structure, op table and shapes are checked here so a bad model fails at load, not at first run.
  infer_shapes(graph, 1);
  std::shared_ptr<Model> model(new Model());
  model->graph_ = std::make_shared<const Graph>(std::move(graph));
  return model;
}

Model::Model() : packed_weights_(std::make_shared<kernels::PackedWeights>()) {}
Model::~Model() = default;

std::vector<std::string> Model::input_names() const { return graph_->inputs; }
std::vector<std::string> Model::output_names() const { return graph_->outputs; }
const std::vector<std::string>& Model::labels() const { return graph_->labels; }

size_t Model::packed_weight_bytes() const { return packed_weights_->total_bytes(); }

size_t Model::weight_bytes() const {
  size_t total = 0;
  for (const auto& kv : graph_->constants) total += kv.second.bytes->size();
  return total;
}

}  // namespace octet
