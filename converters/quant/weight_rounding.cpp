#include "converters/quant/weight_rounding.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "converters/quant/calibration.h"
#include "converters/quant/conv_patches.h"
#include "graph/quantization.h"
#include "octet/error.h"

namespace octet::quant {
namespace {

// ---- dense linear algebra on row-major d x d doubles (inner loops are contiguous axpys, which vectorize) ----

// In place: the upper Cholesky factor R of the symmetric positive definite `a` (a = R^T R), right-looking so
// every update is a contiguous row; the strict lower triangle is zeroed. Returns false if a pivot is not
// positive.
bool cholesky_upper(std::vector<double>& a, int64_t d) {
  for (int64_t k = 0; k < d; ++k) {
    double* row_k = &a[static_cast<size_t>(k * d)];
    if (!(row_k[k] > 0)) return false;
    const double pivot = std::sqrt(row_k[k]);
    for (int64_t j = k; j < d; ++j) row_k[j] /= pivot;
    for (int64_t j = 0; j < k; ++j) row_k[j] = 0;
    for (int64_t i = k + 1; i < d; ++i) {
      double* row_i = &a[static_cast<size_t>(i * d)];
      const double f = row_k[i];
      for (int64_t j = i; j < d; ++j) row_i[j] -= f * row_k[j];
    }
  }
  return true;
}

// The inverse of an upper-triangular R, rows from the bottom: row i of X = R^-1 is
// (e_i - sum_k>i R_ik X_k) / R_ii, and row k of X is zero left of column k.
std::vector<double> invert_upper(const std::vector<double>& r, int64_t d) {
  std::vector<double> x(static_cast<size_t>(d * d), 0.0);
  for (int64_t i = d - 1; i >= 0; --i) {
    double* row_i = &x[static_cast<size_t>(i * d)];
    const double* r_i = &r[static_cast<size_t>(i * d)];
    row_i[i] = 1.0;
    for (int64_t k = i + 1; k < d; ++k) {
      const double f = r_i[k];
      const double* row_k = &x[static_cast<size_t>(k * d)];
      for (int64_t c = k; c < d; ++c) row_i[c] -= f * row_k[c];
    }
    for (int64_t c = i; c < d; ++c) row_i[c] /= r_i[i];
  }
  return x;
}

// The upper-triangular U with H^-1 = U^T U, which GPTQ's column updates read row by row. With J the
// reversal permutation and J H J = R^T R (R upper), H = A^T A for the lower A = J R J, so
// H^-1 = A^-1 A^-T and U = A^-T = J R^-T J: one Cholesky and one triangular inverse, no explicit H^-1.
bool inverse_upper_factor(const std::vector<double>& h, int64_t d, std::vector<double>& u) {
  std::vector<double> reversed(static_cast<size_t>(d * d));
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j < d; ++j)
      reversed[static_cast<size_t>(i * d + j)] = h[static_cast<size_t>((d - 1 - i) * d + (d - 1 - j))];
  if (!cholesky_upper(reversed, d)) return false;
  const std::vector<double> x = invert_upper(reversed, d);
  u.assign(static_cast<size_t>(d * d), 0.0);
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = i; j < d; ++j)
      u[static_cast<size_t>(i * d + j)] = x[static_cast<size_t>((d - 1 - j) * d + (d - 1 - i))];
  return true;
}

// ---- which layers, and their input patches ----

struct Layer {
  size_t node = 0;         // index in the INT8 graph
  std::string fp32_input;  // the FP32 tensor its weights multiply
  const Constant* fp32_weights = nullptr;
  int64_t rows = 0, cols = 0;  // output channels, inputs per output channel
  bool gemm = false, gemm_trans_b = false;
  ConvGeometry geometry;
  std::string key;              // in WeightRoundingCache
  std::vector<double> hessian;  // cols x cols, upper triangle accumulated
  int64_t samples = 0;
};

// H += x x^T over the rows of `patches` (upper triangle only). One image's sum (at most
// kMaxPositionsPerImage rows) is formed in float, four rows of H at a time so each x_j loaded feeds four
// multiply-adds, and then added to the double total (the float sums are short); this made ResNet-50's
// conversion clearly faster than the row-by-row double version. Also compiled for AVX-512 and AVX2 (chosen at
// load by the CPU); this loop is still the largest part of GPTQ's time (see RESULTS.md, Design measurements).
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
void accumulate(Layer& layer, const std::vector<float>& patches, std::vector<float>& scratch) {
  const int64_t d = layer.cols, n = static_cast<int64_t>(patches.size()) / d;
  scratch.assign(static_cast<size_t>(d * d), 0.0f);
  for (int64_t i0 = 0; i0 < d; i0 += 4) {
    const int64_t block = std::min<int64_t>(4, d - i0);
    float* h[4];
    for (int64_t b = 0; b < 4; ++b) h[b] = &scratch[static_cast<size_t>((i0 + std::min(b, block - 1)) * d)];
    for (int64_t s = 0; s < n; ++s) {
      const float* x = &patches[static_cast<size_t>(s * d)];
      float a[4] = {0, 0, 0, 0};
      for (int64_t b = 0; b < block; ++b) a[b] = x[i0 + b];
      for (int64_t j = i0; j < d; ++j) {  // columns left of a row's diagonal get sums the upper triangle ignores
        const float xj = x[j];
        h[0][j] += a[0] * xj;
        h[1][j] += a[1] * xj;
        h[2][j] += a[2] * xj;
        h[3][j] += a[3] * xj;
      }
    }
  }
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = i; j < d; ++j)
      layer.hessian[static_cast<size_t>(i * d + j)] += scratch[static_cast<size_t>(i * d + j)];
  layer.samples += n;
}

bool reads(const Node& node, const std::string& tensor) {
  return std::find(node.inputs.begin(), node.inputs.end(), tensor) != node.inputs.end();
}

// A layer's identity for WeightRoundingCache: node, weight constant and the bytes of its scales.
std::string cache_key(const Graph& int8, const Node& node) {
  const std::vector<float>& scales = int8.tensor(node.inputs[1]).quant.scales;
  return node.name + '\n' + node.inputs[1] + '\n' +
         std::string(reinterpret_cast<const char*>(scales.data()), scales.size() * sizeof(float));
}

// The FP32 weights as a row-major [rows x cols] matrix (a Gemm's B without transB is [K, N]: transposed).
std::vector<double> weight_matrix(const Layer& layer) {
  const float* w = layer.fp32_weights->data<float>();
  std::vector<double> m(static_cast<size_t>(layer.rows * layer.cols));
  for (int64_t r = 0; r < layer.rows; ++r)
    for (int64_t c = 0; c < layer.cols; ++c)
      m[static_cast<size_t>(r * layer.cols + c)] =
          layer.gemm && !layer.gemm_trans_b ? w[c * layer.rows + r] : w[r * layer.cols + c];
  return m;
}

}  // namespace

std::vector<int8_t> gptq_quantize(const std::vector<double>& weights, int64_t rows, int64_t cols,
                                  const std::vector<float>& row_scales, std::vector<double> hessian) {
  auto scale_of = [&](int64_t r) {
    return row_scales.size() == 1 ? row_scales[0] : row_scales[static_cast<size_t>(r)];
  };
  const IntRange range = quantized_range(DType::s8);
  // Symmetric H from its upper triangle; dead inputs get H_ii = 1; 1% damping.
  double mean_diagonal = 0;
  for (int64_t i = 0; i < cols; ++i) {
    for (int64_t j = 0; j < i; ++j)
      hessian[static_cast<size_t>(i * cols + j)] = hessian[static_cast<size_t>(j * cols + i)];
    double& hii = hessian[static_cast<size_t>(i * cols + i)];
    if (hii <= 0) hii = 1;
    mean_diagonal += hii;
  }
  mean_diagonal /= static_cast<double>(cols);
  for (int64_t i = 0; i < cols; ++i) hessian[static_cast<size_t>(i * cols + i)] += 0.01 * mean_diagonal;

  // Act order: the columns with the largest H_ii first (stable, so ties keep their order).
  std::vector<int64_t> order(static_cast<size_t>(cols));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return hessian[static_cast<size_t>(a * cols + a)] > hessian[static_cast<size_t>(b * cols + b)];
  });
  std::vector<double> h(static_cast<size_t>(cols * cols)), w(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < cols; ++i)
    for (int64_t j = 0; j < cols; ++j)
      h[static_cast<size_t>(i * cols + j)] = hessian[static_cast<size_t>(order[i] * cols + order[j])];
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      w[static_cast<size_t>(r * cols + c)] = weights[static_cast<size_t>(r * cols + order[c])];

  std::vector<double> u;
  if (!inverse_upper_factor(h, cols, u)) throw Error("GPTQ: the damped input second moment is not positive definite");
  std::vector<int8_t> q(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    double* row = &w[static_cast<size_t>(r * cols)];
    float scale = scale_of(r);
    for (int64_t i = 0; i < cols; ++i) {
      int32_t qi = quantize_value(static_cast<float>(row[i]), scale, 0, range.min, range.max);
      q[static_cast<size_t>(r * cols + order[i])] = static_cast<int8_t>(qi);
      const double* u_i = &u[static_cast<size_t>(i * cols)];
      double error = (row[i] - static_cast<double>(dequantize_value(qi, scale, 0))) / u_i[i];
      for (int64_t j = i + 1; j < cols; ++j) row[j] -= error * u_i[j];
    }
  }
  return q;
}

double weighted_error(const std::vector<double>& weights, const std::vector<int8_t>& quantized, int64_t rows,
                      int64_t cols, const std::vector<float>& row_scales, const std::vector<double>& hessian) {
  double total = 0;
  std::vector<double> e(static_cast<size_t>(cols)), he(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    float scale = row_scales.size() == 1 ? row_scales[0] : row_scales[static_cast<size_t>(r)];
    for (int64_t c = 0; c < cols; ++c) {
      size_t k = static_cast<size_t>(r * cols + c);
      e[static_cast<size_t>(c)] = static_cast<double>(dequantize_value(quantized[k], scale, 0)) - weights[k];
    }
    std::fill(he.begin(), he.end(), 0.0);  // H e as a sum of rows of H (contiguous), then e . (H e)
    for (int64_t i = 0; i < cols; ++i) {
      const double ei = e[static_cast<size_t>(i)], *h = &hessian[static_cast<size_t>(i * cols)];
      for (int64_t j = 0; j < cols; ++j) he[static_cast<size_t>(j)] += ei * h[j];
    }
    for (int64_t i = 0; i < cols; ++i) total += e[static_cast<size_t>(i)] * he[static_cast<size_t>(i)];
  }
  return total;
}

static std::string node_op(const Graph& graph, const Layer& layer) { return graph.nodes[layer.node].op; }

WeightRoundingReport round_weights_gptq(Graph& int8, const Graph& fp32, const std::vector<std::string>& images,
                                        const std::function<void(size_t, size_t)>& progress,
                                        WeightRoundingCache* cache) {
  WeightRoundingCache local_cache;
  WeightRoundingCache& decided = cache ? *cache : local_cache;
  std::vector<std::pair<size_t, std::string>> known;  // (node, cache key) of layers decided before
  std::map<std::string, const Node*> fp32_nodes;
  for (const Node& n : fp32.nodes) fp32_nodes[n.name] = &n;
  WeightRoundingReport report;
  std::vector<Layer> layers;
  for (size_t i = 0; i < int8.nodes.size(); ++i) {
    const Node& node = int8.nodes[i];
    if (node.op != "Conv" && node.op != "Gemm" && node.op != "MatMul") continue;
    const Constant* w = int8.find_constant(node.inputs[1]);
    auto original = fp32_nodes.find(node.name);
    if (!w || w->dtype != DType::s8 || original == fp32_nodes.end()) continue;
    const Constant* fw = fp32.find_constant(original->second->inputs[1]);
    if (!fw || fw->dtype != DType::f32 || fw->shape != w->shape) continue;
    Layer layer;
    layer.node = i;
    layer.fp32_input = original->second->inputs[0];
    layer.fp32_weights = fw;
    if (node.op == "Gemm" || node.op == "MatMul") {  // a MatMul with constant weights [K, N] (a linear layer)
      if (node.attrs.get_int("transA", 0) != 0 || w->shape.size() != 2) {
        ++report.skipped;
        continue;
      }
      layer.gemm = true;
      layer.gemm_trans_b = node.attrs.get_int("transB", 0) != 0;
      layer.rows = layer.gemm_trans_b ? w->shape[0] : w->shape[1];
      layer.cols = layer.gemm_trans_b ? w->shape[1] : w->shape[0];
    } else {
      if (w->shape.size() != 4 || node.attrs.get_int("group", 1) != 1) {
        ++report.skipped;
        continue;
      }
      layer.rows = w->shape[0];
      layer.cols = w->shape[1] * w->shape[2] * w->shape[3];
      layer.geometry = conv_geometry(node, w->shape);
    }
    if (layer.cols > kMaxRoundedInputs) {
      ++report.skipped;
      continue;
    }
    layer.key = cache_key(int8, node);
    if (decided.entries.count(layer.key)) {
      known.emplace_back(i, layer.key);
      continue;
    }
    layer.hessian.assign(static_cast<size_t>(layer.cols * layer.cols), 0.0);
    layers.push_back(std::move(layer));
  }

  std::vector<std::string> inputs;  // empty when every layer is known: no FP32 pass
  for (const Layer& l : layers)
    if (std::find(inputs.begin(), inputs.end(), l.fp32_input) == inputs.end()) inputs.push_back(l.fp32_input);
  size_t image = 0;
  std::vector<float> patches, scratch;
  if (!inputs.empty())
    run_on_images(
        fp32, inputs, images,
        [&](const std::string&, Session& session) {
          // Golden-ratio phases: each image samples other positions of a large output.
          double phase = std::fmod(static_cast<double>(image++) * 0.6180339887498949, 1.0);
          for (size_t o = 0; o < session.num_outputs(); ++o) {
            Tensor t = session.output(o);
            for (Layer& layer : layers) {
              if (layer.fp32_input != t.name) continue;
              patches.clear();
              if (layer.gemm) {
                // One row per sample (a token of a Transformer, or the one row of a classifier), up to
                // kMaxPositionsPerImage rows evenly spaced from the golden-ratio phase.
                if (t.elements() % layer.cols != 0)
                  throw Error("GPTQ: " + t.name + " does not match the " + node_op(int8, layer) + "'s " +
                              std::to_string(layer.cols) + " inputs");
                int64_t rows = t.elements() / layer.cols, take = std::min<int64_t>(rows, kMaxPositionsPerImage);
                for (int64_t k = 0; k < take; ++k) {
                  int64_t r = (static_cast<int64_t>(phase * static_cast<double>(rows)) + k * rows / take) % rows;
                  patches.insert(patches.end(), t.data + r * layer.cols, t.data + (r + 1) * layer.cols);
                }
              } else {
                if (t.shape.size() != 4 || t.shape[0] != 1 ||
                    t.shape[1] * layer.geometry.kh * layer.geometry.kw != layer.cols)
                  throw Error("GPTQ: " + t.name + " " + shape_str(t.shape) + " does not match its Conv's weights");
                append_conv_patches(layer.geometry, t, kMaxPositionsPerImage, phase, patches);
              }
              accumulate(layer, patches, scratch);
            }
          }
        },
        progress);

  for (Layer& layer : layers) {
    WeightRoundingCache::Entry& entry = decided.entries[layer.key];
    if (layer.samples < 4 * layer.cols) {  // kept to nearest
      known.emplace_back(layer.node, layer.key);
      continue;
    }
    const Node& node = int8.nodes[layer.node];
    const QuantParams params = int8.tensor(node.inputs[1]).quant;
    std::vector<double> w = weight_matrix(layer);
    std::vector<double> h = layer.hessian;  // the mean, symmetric
    for (int64_t i = 0; i < layer.cols; ++i)
      for (int64_t j = i; j < layer.cols; ++j)
        h[static_cast<size_t>(j * layer.cols + i)] = h[static_cast<size_t>(i * layer.cols + j)] /=
            static_cast<double>(layer.samples);
    std::vector<int8_t> q = gptq_quantize(w, layer.rows, layer.cols, params.scales, h);

    // The integers in the stored layout; quantize_weights of q * scale gives back exactly q.
    std::vector<int8_t> nearest(q.size());
    std::vector<float> values(q.size());
    const IntRange range = quantized_range(DType::s8);
    for (int64_t r = 0; r < layer.rows; ++r) {
      float scale = params.scales.size() == 1 ? params.scales[0] : params.scales[static_cast<size_t>(r)];
      for (int64_t c = 0; c < layer.cols; ++c) {
        size_t k = static_cast<size_t>(r * layer.cols + c);
        nearest[k] = static_cast<int8_t>(quantize_value(static_cast<float>(w[k]), scale, 0, range.min, range.max));
        size_t stored = layer.gemm && !layer.gemm_trans_b ? static_cast<size_t>(c * layer.rows + r) : k;
        values[stored] = dequantize_value(q[k], scale, 0);
      }
    }
    double signal = 0;  // w^T H w over rows
    {
      std::vector<int8_t> zero(q.size(), 0);
      signal = weighted_error(w, zero, layer.rows, layer.cols, params.scales, h);
    }
    entry.nearest_db =
        10 *
        std::log10(signal / std::max(weighted_error(w, nearest, layer.rows, layer.cols, params.scales, h), 1e-300));
    entry.rounded_db =
        10 * std::log10(signal / std::max(weighted_error(w, q, layer.rows, layer.cols, params.scales, h), 1e-300));
    entry.weights = quantize_weights(Constant::from_floats(layer.fp32_weights->shape, values), params);
    entry.rounded = true;
    known.emplace_back(layer.node, layer.key);
  }

  double nearest_db = 0, rounded_db = 0;
  std::vector<std::string> replaced;  // shared constants now read under new names
  for (const auto& [index, key] : known) {
    const WeightRoundingCache::Entry& entry = decided.entries.at(key);
    if (!entry.rounded) {
      ++report.skipped;
      continue;
    }
    Node& node = int8.nodes[index];
    nearest_db += entry.nearest_db;
    rounded_db += entry.rounded_db;

    // In place when this node alone reads the constant (names stay the model's); else under a new name.
    const std::string old_name = node.inputs[1];
    const bool shared =
        std::count_if(int8.nodes.begin(), int8.nodes.end(), [&](const Node& n) { return reads(n, old_name); }) > 1;
    std::string name = old_name;
    if (shared) {
      name = node.name + "/weight_s8_gptq";
      for (int i = 2; int8.is_constant(name) || int8.tensors.count(name); ++i)
        name = node.name + "/weight_s8_gptq_" + std::to_string(i);
      int8.tensors[name] = int8.tensor(old_name);
      node.inputs[1] = name;
      replaced.push_back(old_name);
    }
    int8.constants[name] = entry.weights;
    ++report.layers;
  }
  for (const std::string& old_name : replaced) {
    if (std::none_of(int8.nodes.begin(), int8.nodes.end(), [&](const Node& n) { return reads(n, old_name); })) {
      int8.constants.erase(old_name);
      int8.tensors.erase(old_name);
    }
  }
  if (report.layers) {
    report.nearest_db = nearest_db / static_cast<double>(report.layers);
    report.rounded_db = rounded_db / static_cast<double>(report.layers);
  }
  return report;
}

}  // namespace octet::quant