// write_seeds CORPUS_DIR: writes the fuzzers' seed corpora, CORPUS_DIR/model/*.model and CORPUS_DIR/image/*.
// The committed tests/fuzz/corpus was made with it (build target fuzz_write_seeds of the OCTET_FUZZ build);
// rerun it after a model format change. Every seed is small and valid (checked here by the real readers),
// so the fuzzers start from inputs that reach deep into the readers rather than from their first check.
//   model: three tiny graphs through serialize_model, as fuzz_input.h lays them out: an FP32 classifier
//          with preprocessing and labels; an INT8 Quantize -> Conv (u8 x s8, per-channel) -> Dequantize;
//          a graph of the shape ops (Reshape, Transpose, Slice, Concat, Pad, Split, Gather, ...).
//   image: JPEG (baseline 4:2:0, progressive, grayscale, Adobe CMYK), PNG (RGB, gray + alpha), BMP, TGA,
//          GIF, PNM and HDR, each a few pixels.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <jpeglib.h>
#include <stb/stb_image_write.h>  // declarations only: the implementation is in libstb

#include "graph/model_format.h"
#include "graph/shape_inference.h"
#include "octet/image.h"
#include "tests/fuzz/fuzz_input.h"

namespace fs = std::filesystem;
using namespace octet;

namespace {

using Bytes = std::vector<uint8_t>;

void write_file(const fs::path& path, const Bytes& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  std::printf("%s: %zu bytes\n", path.string().c_str(), bytes.size());
}

Constant ramp_constant(DType dtype, const Shape& shape) {
  Constant c;
  c.dtype = dtype;
  c.shape = shape;
  Bytes bytes(size_t(shape_elements(shape)) * dtype_size(dtype));
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i * 37 + 11);
  c.bytes = octet::make_bytes(std::move(bytes));
  return c;
}

Constant float_constant(const Shape& shape) {
  std::vector<float> values(size_t(shape_elements(shape)));
  for (size_t i = 0; i < values.size(); ++i) values[i] = float(int(i % 7) - 3) * 0.125f;
  return Constant::from_floats(shape, values);
}

QuantParams quant(std::vector<float> scales, std::vector<int32_t> zero_points, int axis) {
  QuantParams q;
  q.scales = std::move(scales);
  q.zero_points = std::move(zero_points);
  q.axis = axis;
  return q;
}

Node node(std::string name, std::string op, std::vector<std::string> inputs, std::vector<std::string> outputs) {
  return Node{std::move(name), std::move(op), std::move(inputs), std::move(outputs), {}};
}

// image [N,3,8,8] -> Conv 3x3 + ReLU -> MaxPool 2x2 -> GlobalAveragePool -> Flatten -> Gemm -> Softmax.
Graph classifier() {
  Graph g;
  g.name = "tiny-classifier";
  g.inputs = {"image"};
  g.outputs = {"probabilities"};
  g.tensors["image"] = {DType::f32, {kBatchDim, 3, 8, 8}, {}};
  g.constants["conv.w"] = float_constant({4, 3, 3, 3});
  g.constants["conv.b"] = float_constant({4});
  g.constants["fc.w"] = float_constant({3, 4});
  g.constants["fc.b"] = float_constant({3});
  Node conv = node("conv", "Conv", {"image", "conv.w", "conv.b"}, {"conv.out"});
  conv.attrs.set("kernel_shape", std::vector<int64_t>{3, 3});
  conv.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  conv.attrs.set("act", std::string("relu"));
  Node pool = node("pool", "MaxPool", {"conv.out"}, {"pool.out"});
  pool.attrs.set("kernel_shape", std::vector<int64_t>{2, 2});
  pool.attrs.set("strides", std::vector<int64_t>{2, 2});
  Node flatten = node("flatten", "Flatten", {"gap.out"}, {"features"});
  flatten.attrs.set("axis", int64_t{1});
  Node fc = node("fc", "Gemm", {"features", "fc.w", "fc.b"}, {"logits"});
  fc.attrs.set("transB", int64_t{1});
  Node softmax = node("softmax", "Softmax", {"logits"}, {"probabilities"});
  softmax.attrs.set("axis", int64_t{-1});
  g.nodes = {conv, pool, node("gap", "GlobalAveragePool", {"pool.out"}, {"gap.out"}), flatten, fc, softmax};
  infer_symbolic_shapes(g);
  g.preprocess.present = true;
  g.preprocess.resize_shorter = 10;
  g.preprocess.crop_height = g.preprocess.crop_width = 8;
  g.labels = {"n01443537 goldfish", "cat", "dog"};
  return g;
}

// x [N,3,6,6] -> Quantize (u8) -> Conv (s8 weights per channel, s32 bias, u8 out) -> Dequantize.
Graph int8_conv() {
  Graph g;
  g.name = "tiny-int8";
  g.inputs = {"x"};
  g.outputs = {"y"};
  g.tensors["x"] = {DType::f32, {kBatchDim, 3, 6, 6}, {}};
  g.tensors["x.q"] = {DType::u8, {}, quant({0.02f}, {128}, -1)};
  g.tensors["conv.out"] = {DType::u8, {}, quant({0.05f}, {0}, -1)};
  g.constants["conv.w"] = ramp_constant(DType::s8, {2, 3, 3, 3});
  g.tensors["conv.w"] = {DType::s8, {2, 3, 3, 3}, quant({0.01f, 0.003f}, {0, 0}, 0)};
  g.constants["conv.b"] = ramp_constant(DType::s32, {2});
  Node conv = node("conv", "Conv", {"x.q", "conv.w", "conv.b"}, {"conv.out"});
  conv.attrs.set("kernel_shape", std::vector<int64_t>{3, 3});
  conv.attrs.set("strides", std::vector<int64_t>{2, 2});
  conv.attrs.set("act", std::string("relu"));
  g.nodes = {node("quantize", "Quantize", {"x"}, {"x.q"}), conv, node("dequantize", "Dequantize", {"conv.out"}, {"y"})};
  infer_symbolic_shapes(g);
  return g;
}

// x [N,2,3,4] through the shape and data-movement ops, with a broadcast Add and Mul.
Graph shape_ops() {
  Graph g;
  g.name = "tiny-shapes";
  g.inputs = {"x"};
  g.outputs = {"y", "indices.out"};
  g.tensors["x"] = {DType::f32, {kBatchDim, 2, 3, 4}, {}};
  g.constants["bias"] = float_constant({4});
  g.constants["indices"] = Constant::from_ints({2}, {2, 0});
  Node transpose = node("transpose", "Transpose", {"x"}, {"t"});
  transpose.attrs.set("perm", std::vector<int64_t>{0, 1, 3, 2});
  Node slice = node("slice", "Slice", {"t"}, {"s"});
  slice.attrs.set("starts", std::vector<int64_t>{1});
  slice.attrs.set("ends", std::vector<int64_t>{4});
  slice.attrs.set("axes", std::vector<int64_t>{2});
  slice.attrs.set("steps", std::vector<int64_t>{2});
  Node pad = node("pad", "Pad", {"s"}, {"p"});
  pad.attrs.set("pads", std::vector<int64_t>{0, 0, 1, 0, 0, 0, 1, 1});
  pad.attrs.set("mode", std::string("edge"));
  Node concat = node("concat", "Concat", {"p", "p"}, {"c"});
  concat.attrs.set("axis", int64_t{1});
  Node split = node("split", "Split", {"c"}, {"left", "right"});
  split.attrs.set("axis", int64_t{1});
  split.attrs.set("split", std::vector<int64_t>{1, 3});
  Node gather = node("gather", "Gather", {"right", "indices"}, {"g"});
  gather.attrs.set("axis", int64_t{1});
  Node reduce = node("reduce", "ReduceMean", {"g"}, {"r"});
  reduce.attrs.set("axes", std::vector<int64_t>{2});
  reduce.attrs.set("keepdims", int64_t{0});
  Node reshape = node("reshape", "Reshape", {"r"}, {"flat"});
  reshape.attrs.set("shape", std::vector<int64_t>{0, -1});
  Node unsqueeze = node("unsqueeze", "Unsqueeze", {"flat"}, {"u"});
  unsqueeze.attrs.set("axes", std::vector<int64_t>{1});
  Node squeeze = node("squeeze", "Squeeze", {"u"}, {"y0"});
  squeeze.attrs.set("axes", std::vector<int64_t>{1});
  Node clip = node("clip", "Clip", {"left"}, {"indices.out"});
  clip.attrs.set("min", 0.0f);
  clip.attrs.set("max", 6.0f);
  g.nodes = {transpose,
             slice,
             pad,
             concat,
             split,
             gather,
             reduce,
             reshape,
             unsqueeze,
             squeeze,
             node("add", "Add", {"y0", "y0"}, {"a"}),
             node("mul", "Mul", {"a", "a"}, {"y"}),
             clip};
  infer_symbolic_shapes(g);
  return g;
}

void write_model_seed(const fs::path& folder, const Graph& graph) {
  const ModelFiles files = serialize_model(graph);
  parse_model(files.json, files.binary, graph.name);  // a seed must load
  write_file(folder / (graph.name + ".model"), fuzz::join_model_input(files.json, files.binary));
}

// A width x height RGB gradient.
Bytes pixels(int width, int height, int channels) {
  Bytes out;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < channels; ++c) out.push_back(uint8_t((x * 40 + y * 25 + c * 90) % 256));
  return out;
}

Bytes jpeg(int width, int height, J_COLOR_SPACE space, int channels, bool progressive, int h_sampling) {
  jpeg_compress_struct info{};
  jpeg_error_mgr errors{};
  info.err = jpeg_std_error(&errors);  // the default error_exit exits: fine for a generator
  jpeg_create_compress(&info);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&info, &buffer, &size);
  info.image_width = JDIMENSION(width);
  info.image_height = JDIMENSION(height);
  info.input_components = channels;
  info.in_color_space = space;
  jpeg_set_defaults(&info);
  jpeg_set_quality(&info, 80, TRUE);
  if (space == JCS_RGB) info.comp_info[0].h_samp_factor = h_sampling, info.comp_info[0].v_samp_factor = h_sampling;
  if (progressive) jpeg_simple_progression(&info);
  jpeg_start_compress(&info, TRUE);
  Bytes image = pixels(width, height, channels);
  while (info.next_scanline < info.image_height) {
    JSAMPROW row = image.data() + size_t(info.next_scanline) * size_t(width * channels);
    jpeg_write_scanlines(&info, &row, 1);
  }
  jpeg_finish_compress(&info);
  jpeg_destroy_compress(&info);
  Bytes out(buffer, buffer + size);
  std::free(buffer);
  return out;
}

// stb_image_write's writers, to memory.
template <typename Write>
Bytes stb_write(Write write) {
  Bytes out;
  auto append = [](void* context, void* data, int size) {
    auto* bytes = static_cast<Bytes*>(context);
    bytes->insert(bytes->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  };
  write(append, &out);
  return out;
}

void write_image_seed(const fs::path& folder, const std::string& name, const Bytes& bytes) {
  decode_image_memory(bytes.data(), bytes.size(), name);  // a seed must decode
  write_file(folder / name, bytes);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: write_seeds CORPUS_DIR\n");
    return 2;
  }
  try {
    const fs::path models = fs::path(argv[1]) / "model", images = fs::path(argv[1]) / "image";
    fs::create_directories(models);
    fs::create_directories(images);
    for (const Graph& graph : {classifier(), int8_conv(), shape_ops()}) write_model_seed(models, graph);

    write_image_seed(images, "baseline-420.jpg", jpeg(16, 12, JCS_RGB, 3, false, 2));
    write_image_seed(images, "progressive-444.jpg", jpeg(13, 7, JCS_RGB, 3, true, 1));
    write_image_seed(images, "gray.jpg", jpeg(9, 9, JCS_GRAYSCALE, 1, false, 1));
    write_image_seed(images, "adobe-cmyk.jpg", jpeg(8, 8, JCS_CMYK, 4, false, 1));
    const Bytes rgb = pixels(7, 5, 3), gray_alpha = pixels(5, 3, 2);
    write_image_seed(images, "rgb.png",
                     stb_write([&](auto f, void* c) { stbi_write_png_to_func(f, c, 7, 5, 3, rgb.data(), 21); }));
    write_image_seed(images, "gray-alpha.png",
                     stb_write([&](auto f, void* c) { stbi_write_png_to_func(f, c, 5, 3, 2, gray_alpha.data(), 10); }));
    write_image_seed(images, "rgb.bmp",
                     stb_write([&](auto f, void* c) { stbi_write_bmp_to_func(f, c, 7, 5, 3, rgb.data()); }));
    write_image_seed(images, "rle.tga",
                     stb_write([&](auto f, void* c) { stbi_write_tga_to_func(f, c, 7, 5, 3, rgb.data()); }));
    const std::vector<float> radiance(4 * 3 * 3, 0.75f);
    write_image_seed(images, "tiny.hdr",
                     stb_write([&](auto f, void* c) { stbi_write_hdr_to_func(f, c, 4, 3, 3, radiance.data()); }));
    Bytes ppm = {'P', '6', '\n', '7', ' ', '5', '\n', '2', '5', '5', '\n'};
    ppm.insert(ppm.end(), rgb.begin(), rgb.end());
    write_image_seed(images, "rgb.ppm", ppm);
    // The classic 1x1 GIF89a: a two-colour palette and one LZW-coded pixel.
    write_image_seed(images, "pixel.gif",
                     {'G', 'I',  'F', '8', '9', 'a', 1, 0, 1, 0, 0x80, 0, 0, 0xff, 0xff, 0xff, 0,   0,
                      0,   0x2c, 0,   0,   0,   0,   1, 0, 1, 0, 0,    2, 2, 0x44, 0x01, 0,    0x3b});
  } catch (const Error& e) {
    std::fprintf(stderr, "write_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
