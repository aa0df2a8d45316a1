// Image decoding (libjpeg-turbo for JPEG, stb_image for PNG and BMP; nothing else is read) and PIL/torchvision-style
// preprocessing; the contract is in octet/image.h.
#include "octet/image.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <system_error>

#include <stb/stb_image.h>  // declarations only: the implementation is in libstb

#include "graph/graph.h"
#include "runtime/jpeg_decoder.h"

namespace octet {
namespace {

// stb's failure reason is thread-local in libstb, so reading it right after the failing call is safe.
std::string decoder_failure(const std::string& name) {
  const char* reason = stbi_failure_reason();
  return name + ": cannot decode image: " + (reason ? reason : "unknown reason");
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) {
    const int error = errno;
    throw Error(path + ": cannot open image file: " + std::generic_category().message(error));
  }
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  while (size_t count = std::fread(chunk, 1, sizeof chunk, file.get())) {
    // stb takes the length as an int; stop reading rather than buffer an arbitrarily large file.
    if (bytes.size() + count > size_t(INT_MAX)) throw Error(path + ": file is larger than 2 GiB");
    bytes.insert(bytes.end(), chunk, chunk + count);
  }
  if (std::ferror(file.get())) {
    const int error = errno;
    throw Error(path + ": cannot read image file: " + std::generic_category().message(error));
  }
  return bytes;
}

// One output sample of a resampling pass along one axis: the weighted sum of weights.size() consecutive
// source samples starting at `first`. No weights: a crop pixel outside the resized image (padding, 0).
struct Taps {
  int first = 0;
  std::vector<float> weights;
};

float triangle(double x) {
  x = std::fabs(x);
  return x < 1.0 ? float(1.0 - x) : 0.0f;
}

// Taps for output samples start .. start + count - 1 of resizing an axis of in_size samples to out_size
// (indices outside 0 .. out_size - 1 get none). Bilinear follows PIL's precompute_coeffs: output sample i
// is centered at (i + 0.5) * scale in the source, and when shrinking the triangle widens by the scale, so
// every source pixel contributes (antialiasing); when enlarging this is bilinear with half-pixel centers.
std::vector<Taps> axis_taps(Resize method, int in_size, int64_t out_size, int64_t start, int count) {
  const double scale = double(in_size) / double(out_size);
  const double filter_scale = std::max(scale, 1.0);
  const double support = filter_scale;  // the triangle reaches one source pixel, widened when shrinking
  std::vector<Taps> taps(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    const int64_t out = start + i;
    if (out < 0 || out >= out_size) continue;
    const double center = (double(out) + 0.5) * scale;
    Taps& t = taps[size_t(i)];
    if (method == Resize::nearest) {  // PIL's NEAREST: the source pixel under the output pixel's center
      t.first = std::min(int(center), in_size - 1);
      t.weights = {1.0f};
      continue;
    }
    // Truncation toward zero as PIL's int casts, then clamped to the image.
    t.first = std::max(int(center - support + 0.5), 0);
    const int end = std::min(int(center + support + 0.5), in_size);
    float total = 0;
    for (int x = t.first; x < end; ++x) {
      t.weights.push_back(triangle((x - center + 0.5) / filter_scale));
      total += t.weights.back();
    }
    if (total != 0)
      for (float& w : t.weights) w /= total;
  }
  return taps;
}

// PIL resamples 8-bit images into 8-bit images, rounding after each pass; doing the same brings the result
// within one level of PIL's (whose fixed-point weights differ from these float ones in the last bits).
float round_to_8_bits(float value) { return std::min(std::max(std::floor(value + 0.5f), 0.0f), 255.0f); }

// numerator / denominator (both positive) rounded to the nearest integer, halves to even as Python's round().
int64_t round_half_even(int64_t numerator, int64_t denominator) {
  const int64_t quotient = numerator / denominator, twice_remainder = 2 * (numerator % denominator);
  if (twice_remainder > denominator || (twice_remainder == denominator && quotient % 2 == 1)) return quotient + 1;
  return quotient;
}

// The first row (or column) of the resized image that lands in the crop: torchvision's CenterCrop takes
// int(round((size - crop) / 2.0)), and when the crop is larger pads (crop - size) // 2 zero pixels before
// the image, which makes the start negative.
int64_t crop_start(int64_t resized, int crop) {
  return crop > resized ? -((crop - resized) / 2) : round_half_even(resized - crop, 2);
}

void check_spec(const PreprocessSpec& spec, const std::string& context) {
  auto fail = [&](const std::string& what) { throw Error(context + "preprocessing: " + what); };
  if (spec.resize_shorter < 0) fail("resize_shorter " + std::to_string(spec.resize_shorter) + " is negative");
  if (spec.crop_height <= 0) fail("crop_height " + std::to_string(spec.crop_height) + " is not positive");
  if (spec.crop_width <= 0) fail("crop_width " + std::to_string(spec.crop_width) + " is not positive");
  if (!(std::isfinite(spec.scale) && spec.scale > 0))
    fail("scale " + std::to_string(spec.scale) + " is not a positive finite number");
  for (int c = 0; c < 3; ++c) {
    const std::string index = "[" + std::to_string(c) + "] ";
    if (!std::isfinite(spec.mean[size_t(c)]))
      fail("mean" + index + std::to_string(spec.mean[size_t(c)]) + " is not finite");
    if (!(std::isfinite(spec.std[size_t(c)]) && spec.std[size_t(c)] != 0))
      fail("std" + index + std::to_string(spec.std[size_t(c)]) + " is not a finite nonzero number");
  }
}

// preprocess_image for a spec already checked.
void preprocess_checked(const Image& image, const PreprocessSpec& spec, float* out) {
  if (image.width <= 0 || image.height <= 0 || image.rgb.size() != size_t(image.width) * size_t(image.height) * 3)
    throw Error("preprocess_image: image is " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                " but holds " + std::to_string(image.rgb.size()) + " bytes");
  const int crop_h = spec.crop_height, crop_w = spec.crop_width;
  // The longer side is round(size * long / short).
  int64_t resized_w = crop_w, resized_h = crop_h;
  if (spec.resize_shorter > 0) {
    const int64_t shorter = spec.resize_shorter;
    resized_w = image.width <= image.height ? shorter : round_half_even(shorter * image.width, image.height);
    resized_h = image.width <= image.height ? round_half_even(shorter * image.height, image.width) : shorter;
  }
  // Only the cropped window of the resized image is computed.
  const std::vector<Taps> column_taps =
      axis_taps(spec.resize, image.width, resized_w, crop_start(resized_w, crop_w), crop_w);
  const std::vector<Taps> row_taps =
      axis_taps(spec.resize, image.height, resized_h, crop_start(resized_h, crop_h), crop_h);

  // Horizontal pass first, as PIL, over the source rows the vertical pass reads.
  int first_row = image.height, end_row = 0;
  for (const Taps& t : row_taps)
    if (!t.weights.empty()) {
      first_row = std::min(first_row, t.first);
      end_row = std::max(end_row, t.first + int(t.weights.size()));
    }
  std::vector<float> horizontal(size_t(std::max(end_row - first_row, 0)) * size_t(crop_w) * 3);
  for (int row = first_row; row < end_row; ++row) {
    const uint8_t* source = image.rgb.data() + size_t(row) * size_t(image.width) * 3;
    float* target = horizontal.data() + size_t(row - first_row) * size_t(crop_w) * 3;
    for (int x = 0; x < crop_w; ++x) {
      const Taps& t = column_taps[size_t(x)];
      for (int c = 0; c < 3; ++c) {
        float sum = 0;
        for (size_t k = 0; k < t.weights.size(); ++k)
          sum += t.weights[k] * source[(size_t(t.first) + k) * 3 + size_t(c)];
        target[size_t(x) * 3 + size_t(c)] = round_to_8_bits(sum);
      }
    }
  }

  // Vertical pass, then scaling, normalization, channel order and layout.
  const bool bgr = spec.channel_order == ChannelOrder::bgr;
  const bool nchw = spec.layout == Layout::nchw;
  const size_t plane = size_t(crop_h) * size_t(crop_w);
  for (int y = 0; y < crop_h; ++y) {
    const Taps& t = row_taps[size_t(y)];
    for (int x = 0; x < crop_w; ++x) {
      for (int c = 0; c < 3; ++c) {
        const int source_channel = bgr ? 2 - c : c;
        float sum = 0;
        for (size_t k = 0; k < t.weights.size(); ++k)
          sum +=
              t.weights[k] *
              horizontal[((size_t(t.first - first_row) + k) * size_t(crop_w) + size_t(x)) * 3 + size_t(source_channel)];
        const float value = (round_to_8_bits(sum) * spec.scale - spec.mean[size_t(c)]) / spec.std[size_t(c)];
        const size_t pixel = size_t(y) * size_t(crop_w) + size_t(x);
        out[nchw ? size_t(c) * plane + pixel : pixel * 3 + size_t(c)] = value;
      }
    }
  }
}

}  // namespace

void check_image_dimensions(int64_t width, int64_t height, const std::string& name) {
  std::string size = std::to_string(width) + "x" + std::to_string(height);
  if (width <= 0 || height <= 0) throw Error(name + ": image has no pixels (" + size + ")");
  if (width > kMaxImageSide || height > kMaxImageSide || width * height > kMaxImagePixels)
    throw Error(name + ": image is " + size + " pixels; refusing images above " + std::to_string(kMaxImageSide) +
                " pixels per side or " + std::to_string(kMaxImagePixels / 1'000'000) + " megapixels");
}

Image decode_image_memory(const uint8_t* data, size_t size, const std::string& name) {
  if (size == 0) throw Error(name + ": empty file (0 bytes), not an image");
  if (size > size_t(INT_MAX)) throw Error(name + ": encoded image is larger than 2 GiB");
  if (is_jpeg(data, size)) return decode_jpeg(data, size, name);
  // Only PNG and BMP go to stb: it also parses PNM, PSD, TGA, GIF, HDR and PIC, and Debian's libstb reads
  // out of bounds on some malformed PNM headers (found by tests/fuzz/fuzz_image_decoder). Formats octet does
  // not promise are refused before any decoder sees them.
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  const bool png = size >= sizeof kPng && std::memcmp(data, kPng, sizeof kPng) == 0;
  const bool bmp = size >= 2 && data[0] == 'B' && data[1] == 'M';
  if (!png && !bmp) throw Error(name + ": cannot decode image: unknown image type (octet reads JPEG, PNG and BMP)");
  const int length = int(size);
  // Read the header first so a huge claimed size is refused before the decoder allocates anything.
  int width = 0, height = 0, channels = 0;
  if (!stbi_info_from_memory(data, length, &width, &height, &channels)) throw Error(decoder_failure(name));
  // stbi_info passes on a top-down BMP's negative height as stored; the decoder flips such images.
  check_image_dimensions(std::abs(int64_t(width)), std::abs(int64_t(height)), name);
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(stbi_load_from_memory(data, length, &width, &height, &channels, 3),
                                                   &stbi_image_free);
  if (!pixels) {
    // stb may fail without a reason (a 16-bit PNG whose 16-bit buffer it cannot allocate): say what it read.
    const char* reason = stbi_failure_reason();
    if (reason && *reason) throw Error(decoder_failure(name));
    throw Error(name + ": cannot decode image: the decoder failed without a reason on a " +
                std::to_string(std::abs(width)) + "x" + std::to_string(std::abs(height)) +
                (stbi_is_16_bit_from_memory(data, length) ? " 16-bit" : "") +
                " image (too large for memory, or corrupt data)");
  }
  check_image_dimensions(width, height, name);  // the decoder read the same header, but never trust a second parse
  Image image;
  image.width = width;
  image.height = height;
  image.rgb.assign(pixels.get(), pixels.get() + size_t(width) * size_t(height) * 3);
  return image;
}

Image decode_image(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file(path);
  return decode_image_memory(bytes.data(), bytes.size(), path);
}

PreprocessSpec preprocess_spec(const Model& model) {
  const Preprocess& p = model.graph().preprocess;
  if (!p.present) throw Error("model has no preprocessing metadata: convert with --preset");
  return p;
}

void preprocess_image(const Image& image, const PreprocessSpec& spec, float* out) {
  check_spec(spec, "");
  preprocess_checked(image, spec, out);
}

void load_image_into(const Model& model, const std::string& path, Tensor input, int64_t batch_index) {
  const PreprocessSpec spec = preprocess_spec(model);
  check_spec(spec, path + ": ");
  const Shape sample = spec.layout == Layout::nchw ? Shape{3, spec.crop_height, spec.crop_width}
                                                   : Shape{spec.crop_height, spec.crop_width, 3};
  if (input.shape.size() != 4 || !std::equal(sample.begin(), sample.end(), input.shape.begin() + 1))
    throw Error(path + ": input \"" + input.name + "\" is " + shape_str(input.shape) +
                " but the model's preprocessing makes samples of " + shape_str(sample));
  if (batch_index < 0 || batch_index >= input.shape[0])
    throw Error(path + ": batch index " + std::to_string(batch_index) + " is outside input \"" + input.name + "\" " +
                shape_str(input.shape));
  if (!input.data) throw Error(path + ": input \"" + input.name + "\" has no data");
  preprocess_checked(decode_image(path), spec, input.data + batch_index * shape_elements(sample));
}

}  // namespace octet
