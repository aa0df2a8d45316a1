#include "converters/weight_rounding.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "converters/calibration.h"
#include "graph/quantization.h"
#include "octet/error.h"

namespace octet {
namespace {

// ---- dense linear algebra on row-major d x d doubles (inner loops are contiguous axpys, which vectorize) ----

// In place: the lower Cholesky factor L of the symmetric positive definite `a` (H = L L^T); the upper
// triangle is left as garbage. Returns false if a pivot is not positive.
bool cholesky_lower(std::vector<double>& a, int64_t d) {
  for (int64_t j = 0; j < d; ++j) {
    double* row_j = &a[static_cast<size_t>(j * d)];
    double diagonal = row_j[j];
    for (int64_t k = 0; k < j; ++k) diagonal -= row_j[k] * row_j[k];
    if (!(diagonal > 0)) return false;
    double pivot = std::sqrt(diagonal);
    row_j[j] = pivot;
    for (int64_t i = j + 1; i < d; ++i) {
      double* row_i = &a[static_cast<size_t>(i * d)];
      double s = row_i[j];
      for (int64_t k = 0; k < j; ++k) s -= row_i[k] * row_j[k];
      row_i[j] = s / pivot;
    }
  }
  return true;
}

// The inverse of a lower-triangular L, row by row: row i of X = L^-1 is (e_i - sum_k<i L_ik X_k) / L_ii.
std::vector<double> invert_lower(const std::vector<double>& l, int64_t d) {
  std::vector<double> x(static_cast<size_t>(d * d), 0.0);
  for (int64_t i = 0; i < d; ++i) {
    double* row_i = &x[static_cast<size_t>(i * d)];
    const double* l_i = &l[static_cast<size_t>(i * d)];
    for (int64_t k = 0; k < i; ++k) {
      double f = l_i[k];
      const double* row_k = &x[static_cast<size_t>(k * d)];
      for (int64_t c = 0; c <= k; ++c) row_i[c] -= f * row_k[c];
    }
    row_i[i] += 1.0;
    for (int64_t c = 0; c <= i; ++c) row_i[c] /= l_i[i];
  }
  return x;
}

// The upper-triangular U with H^-1 = U^T U, which GPTQ's column updates read row by row. With J the
// reversal permutation and J H J = M M^T (M lower), H = R R^T for the upper R = J M J, so H^-1 = R^-T R^-1
// and U = R^-1 = J M^-1 J: one Cholesky and one triangular inverse, no explicit H^-1.
bool inverse_upper_factor(const std::vector<double>& h, int64_t d, std::vector<double>& u) {
  std::vector<double> reversed(static_cast<size_t>(d * d));
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j < d; ++j) reversed[static_cast<size_t>(i * d + j)] = h[static_cast<size_t>((d - 1 - i) * d + (d - 1 - j))];
  if (!cholesky_lower(reversed, d)) return false;
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = i + 1; j < d; ++j) reversed[static_cast<size_t>(i * d + j)] = 0;
  std::vector<double> m_inv = invert_lower(reversed, d);
  u.assign(static_cast<size_t>(d * d), 0.0);
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j < d; ++j) u[static_cast<size_t>(i * d + j)] = m_inv[static_cast<size_t>((d - 1 - i) * d + (d - 1 - j))];
  return true;
}

// ---- which layers, and their input patches ----

struct Layer {
  size_t node = 0;           // index in the INT8 graph
  std::string fp32_input;    // the FP32 tensor its weights multiply
  const Constant* fp32_weights = nullptr;
  int64_t rows = 0, cols = 0;  // output channels, inputs per output channel
  bool gemm = false, gemm_trans_b = false;
  // Conv geometry (2-D).
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1, pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  std::vector<double> hessian;  // cols x cols, upper triangle accumulated
  int64_t samples = 0;
};

// Appends the patches of up to `max_positions` evenly spaced output positions of a Conv, one row of
// `cols` values each ((channel, ky, kx) order, 0 outside the input), to `patches`.
void conv_patches(const Layer& layer, const Tensor& input, int64_t max_positions, double phase, std::vector<float>& patches) {
  int64_t channels = input.shape[1], height = input.shape[2], width = input.shape[3];
  int64_t out_h = (height + layer.pad_top + layer.pad_bottom - layer.dh * (layer.kh - 1) - 1) / layer.sh + 1;
  int64_t out_w = (width + layer.pad_left + layer.pad_right - layer.dw * (layer.kw - 1) - 1) / layer.sw + 1;
  int64_t positions = out_h * out_w, taken = std::min(positions, max_positions);
  for (int64_t t = 0; t < taken; ++t) {
    int64_t p = taken == positions ? t : static_cast<int64_t>((static_cast<double>(t) + phase) * static_cast<double>(positions) / static_cast<double>(taken));
    int64_t oy = p / out_w, ox = p % out_w;
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t ky = 0; ky < layer.kh; ++ky)
        for (int64_t kx = 0; kx < layer.kw; ++kx) {
          int64_t iy = oy * layer.sh - layer.pad_top + ky * layer.dh, ix = ox * layer.sw - layer.pad_left + kx * layer.dw;
          bool inside = iy >= 0 && iy < height && ix >= 0 && ix < width;
          patches.push_back(inside ? input.data[(c * height + iy) * width + ix] : 0.0f);
        }
  }
}

// H += x x^T over the rows of `patches` (upper triangle only).
void accumulate(Layer& layer, const std::vector<float>& patches) {
  int64_t d = layer.cols, n = static_cast<int64_t>(patches.size()) / d;
  for (int64_t s = 0; s < n; ++s) {
    const float* x = &patches[static_cast<size_t>(s * d)];
    for (int64_t i = 0; i < d; ++i) {
      double xi = x[i];
      if (xi == 0) continue;  // ReLU outputs are half zeros
      double* h = &layer.hessian[static_cast<size_t>(i * d)];
      for (int64_t j = i; j < d; ++j) h[j] += xi * static_cast<double>(x[j]);
    }
  }
  layer.samples += n;
}

// The FP32 weights as a row-major [rows x cols] matrix (a Gemm's B without transB is [K, N]: transposed).
std::vector<double> weight_matrix(const Layer& layer) {
  const float* w = layer.fp32_weights->data<float>();
  std::vector<double> m(static_cast<size_t>(layer.rows * layer.cols));
  for (int64_t r = 0; r < layer.rows; ++r)
    for (int64_t c = 0; c < layer.cols; ++c)
      m[static_cast<size_t>(r * layer.cols + c)] = layer.gemm && !layer.gemm_trans_b ? w[c * layer.rows + r] : w[r * layer.cols + c];
  return m;
}

}  // namespace

std::vector<int8_t> gptq_quantize(const std::vector<double>& weights, int64_t rows, int64_t cols, const std::vector<float>& row_scales,
                                  std::vector<double> hessian) {
  auto scale_of = [&](int64_t r) { return row_scales.size() == 1 ? row_scales[0] : row_scales[static_cast<size_t>(r)]; };
  const IntRange range = quantized_range(DType::s8);
  // Symmetric H from its upper triangle; dead inputs get H_ii = 1; 1% damping.
  double mean_diagonal = 0;
  for (int64_t i = 0; i < cols; ++i) {
    for (int64_t j = 0; j < i; ++j) hessian[static_cast<size_t>(i * cols + j)] = hessian[static_cast<size_t>(j * cols + i)];
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
    for (int64_t j = 0; j < cols; ++j) h[static_cast<size_t>(i * cols + j)] = hessian[static_cast<size_t>(order[i] * cols + order[j])];
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) w[static_cast<size_t>(r * cols + c)] = weights[static_cast<size_t>(r * cols + order[c])];

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

double weighted_error(const std::vector<double>& weights, const std::vector<int8_t>& quantized, int64_t rows, int64_t cols,
                      const std::vector<float>& row_scales, const std::vector<double>& hessian) {
  double total = 0;
  std::vector<double> e(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    float scale = row_scales.size() == 1 ? row_scales[0] : row_scales[static_cast<size_t>(r)];
    for (int64_t c = 0; c < cols; ++c) {
      size_t k = static_cast<size_t>(r * cols + c);
      e[static_cast<size_t>(c)] = static_cast<double>(dequantize_value(quantized[k], scale, 0)) - weights[k];
    }
    for (int64_t i = 0; i < cols; ++i) {  // e^T H e from the upper triangle
      const double* h = &hessian[static_cast<size_t>(i * cols)];
      double s = 0.5 * h[i] * e[static_cast<size_t>(i)];
      for (int64_t j = i + 1; j < cols; ++j) s += h[j] * e[static_cast<size_t>(j)];
      total += 2 * e[static_cast<size_t>(i)] * s;
    }
  }
  return total;
}

WeightRoundingReport round_weights_gptq(Graph& int8, const Graph& fp32, const std::vector<std::string>& images,
                                        const std::function<void(size_t, size_t)>& progress) {
  std::map<std::string, const Node*> fp32_nodes;
  for (const Node& n : fp32.nodes) fp32_nodes[n.name] = &n;
  WeightRoundingReport report;
  std::vector<Layer> layers;
  for (size_t i = 0; i < int8.nodes.size(); ++i) {
    const Node& node = int8.nodes[i];
    if (node.op != "Conv" && node.op != "Gemm") continue;
    const Constant* w = int8.find_constant(node.inputs[1]);
    auto original = fp32_nodes.find(node.name);
    if (!w || w->dtype != DType::s8 || original == fp32_nodes.end()) continue;
    const Constant* fw = fp32.find_constant(original->second->inputs[1]);
    if (!fw || fw->dtype != DType::f32 || fw->shape != w->shape) continue;
    Layer layer;
    layer.node = i;
    layer.fp32_input = original->second->inputs[0];
    layer.fp32_weights = fw;
    if (node.op == "Gemm") {
      if (node.attrs.get_int("transA", 0) != 0 || w->shape.size() != 2) { ++report.skipped; continue; }
      layer.gemm = true;
      layer.gemm_trans_b = node.attrs.get_int("transB", 0) != 0;
      layer.rows = layer.gemm_trans_b ? w->shape[0] : w->shape[1];
      layer.cols = layer.gemm_trans_b ? w->shape[1] : w->shape[0];
    } else {
      if (w->shape.size() != 4 || node.attrs.get_int("group", 1) != 1) { ++report.skipped; continue; }
      layer.rows = w->shape[0];
      layer.cols = w->shape[1] * w->shape[2] * w->shape[3];
      layer.kh = w->shape[2];
      layer.kw = w->shape[3];
      std::vector<int64_t> strides = node.attrs.get_ints("strides", {1, 1}), dilations = node.attrs.get_ints("dilations", {1, 1}),
                           pads = node.attrs.get_ints("pads", {0, 0, 0, 0});
      layer.sh = strides.at(0), layer.sw = strides.at(1), layer.dh = dilations.at(0), layer.dw = dilations.at(1);
      layer.pad_top = pads.at(0), layer.pad_left = pads.at(1), layer.pad_bottom = pads.at(2), layer.pad_right = pads.at(3);
    }
    layer.hessian.assign(static_cast<size_t>(layer.cols * layer.cols), 0.0);
    layers.push_back(std::move(layer));
  }
  if (layers.empty()) return report;

  std::vector<std::string> inputs;
  for (const Layer& l : layers)
    if (std::find(inputs.begin(), inputs.end(), l.fp32_input) == inputs.end()) inputs.push_back(l.fp32_input);
  size_t image = 0;
  std::vector<float> patches;
  run_on_images(fp32, inputs, images, [&](const std::string&, Session& session) {
    // Golden-ratio phases: each image samples other positions of a large output.
    double phase = std::fmod(static_cast<double>(image++) * 0.6180339887498949, 1.0);
    for (size_t o = 0; o < session.num_outputs(); ++o) {
      Tensor t = session.output(o);
      for (Layer& layer : layers) {
        if (layer.fp32_input != t.name) continue;
        patches.clear();
        if (layer.gemm) {
          if (t.elements() != layer.cols) throw Error("GPTQ: " + t.name + " does not match the Gemm's " + std::to_string(layer.cols) + " inputs");
          patches.assign(t.data, t.data + t.elements());
        } else {
          if (t.shape.size() != 4 || t.shape[0] != 1 || t.shape[1] * layer.kh * layer.kw != layer.cols)
            throw Error("GPTQ: " + t.name + " " + shape_str(t.shape) + " does not match its Conv's weights");
          conv_patches(layer, t, kMaxPositionsPerImage, phase, patches);
        }
        accumulate(layer, patches);
      }
    }
  }, progress);

  double nearest_db = 0, rounded_db = 0;
  for (Layer& layer : layers) {
    Node& node = int8.nodes[layer.node];
    if (layer.samples < 4 * layer.cols) { ++report.skipped; continue; }
    const TensorInfo& info = int8.tensor(node.inputs[1]);
    QuantParams params = info.quant;
    std::vector<double> w = weight_matrix(layer);
    std::vector<double> h = layer.hessian;
    for (double& v : h) v /= static_cast<double>(layer.samples);
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
    nearest_db += 10 * std::log10(signal / std::max(weighted_error(w, nearest, layer.rows, layer.cols, params.scales, h), 1e-300));
    rounded_db += 10 * std::log10(signal / std::max(weighted_error(w, q, layer.rows, layer.cols, params.scales, h), 1e-300));

    std::string old_name = node.inputs[1], name = node.name + "/weight_s8_gptq";
    for (int i = 2; int8.is_constant(name) || int8.tensors.count(name); ++i) name = node.name + "/weight_s8_gptq_" + std::to_string(i);
    int8.constants[name] = quantize_weights(Constant::from_floats(layer.fp32_weights->shape, values), params);
    int8.tensors[name] = info;
    node.inputs[1] = name;
    bool still_read = std::any_of(int8.nodes.begin(), int8.nodes.end(), [&](const Node& n) {
      return std::find(n.inputs.begin(), n.inputs.end(), old_name) != n.inputs.end();
    });
    if (!still_read) {
      int8.constants.erase(old_name);
      int8.tensors.erase(old_name);
    }
    ++report.layers;
  }
  if (report.layers) {
    report.nearest_db = nearest_db / static_cast<double>(report.layers);
    report.rounded_db = rounded_db / static_cast<double>(report.layers);
  }
  return report;
}

}  // namespace octet
