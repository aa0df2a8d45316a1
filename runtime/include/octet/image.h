// octet image input: decode an image file and preprocess it into a model's input tensor.
//
//   auto model = octet::Model::load("mobilenet.octet");
//   octet::Session session(model, {/*batch*/ 2});
//   octet::load_image_into(*model, "cat.jpg", session.input(0), 0);   // sample 0 of the batch
//   octet::load_image_into(*model, "dog.png", session.input(0), 1);   // sample 1
//
// Or step by step, e.g. to decode on other threads or to use your own preprocessing parameters:
//
//   octet::Image image = octet::decode_image("cat.jpg");              // 8-bit RGB
//   octet::PreprocessSpec spec = octet::preprocess_spec(*model);      // what the converter recorded
//   octet::preprocess_image(image, spec, tensor.data);                // one sample's floats
//
// The preprocessing is the usual ImageNet evaluation transform, torchvision's Resize(resize_shorter) +
// CenterCrop(crop) + ToTensor + Normalize on PIL images, and reproduces the shared models' reference inputs:
//   1. resize so the shorter side is resize_shorter, keeping the aspect ratio: the longer side becomes
//      round(resize_shorter * long / short) (torchvision truncates instead; rounding is how the shared
//      references were made, and differs by at most one pixel); resize_shorter == 0 resizes straight to
//      crop_width x crop_height. "bilinear" is PIL's: a triangle filter whose support grows with the
//      downscale factor (antialiased) and plain bilinear interpolation with half-pixel centers when
//      enlarging; like PIL it runs the horizontal pass first and rounds each pass to 8 bits. "nearest"
//      takes the pixel under each output pixel's center.
//   2. center crop crop_height x crop_width (top = round-half-even((height - crop_height) / 2), as Python's
//      round); a crop larger than the resized image is padded with zero pixels, as torchvision does.
//   3. x = (pixel * scale - mean[c]) / std[c], with channels in channel_order ("RGB" or "BGR"; mean and std
//      are indexed by the model's channel, i.e. after reordering), written in layout "NCHW" (C*H*W floats
//      per sample) or "NHWC" (H*W*C).
//
// All functions are thread-safe: there is no global state, so several threads may decode and preprocess at
// once. Failures throw octet::Error; messages about a file name it (or `name`).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "octet/octet.h"
#include "octet/preprocess.h"

namespace octet {

// Decoding refuses images above these sizes, checked from the file header before any pixel memory is
// allocated (a corrupt or hostile header cannot make the decoder allocate gigabytes).
constexpr int kMaxImageSide = 16384;
constexpr int64_t kMaxImagePixels = 100'000'000;

// An 8-bit RGB image: rgb holds height rows of width pixels of 3 bytes (R, G, B), row-major.
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

// Decodes a JPEG, PNG or BMP file, recognized by its first bytes whatever the file name; anything else is
// refused. Grayscale becomes three equal channels; an alpha channel is dropped (not composited); 16-bit
// samples are reduced to 8 bits. JPEGs decode with libjpeg-turbo set up as PIL uses it, so decoded pixels
// are PIL's; 4-component JPEGs are read as PIL reads them (Adobe-inverted CMYK, converted to RGB with PIL's
// formula). PNG and BMP decode with stb_image (its other formats are not passed to it: Debian's libstb
// reads out of bounds on some malformed PNM files).
// Throws Error for a missing or empty file, undecodable data (with the decoder's reason), a truncated JPEG
// (PIL refuses those too), an image with no pixels, or one larger than kMaxImageSide / kMaxImagePixels.
Image decode_image(const std::string& path);
// The same for an encoded image in memory; `name` identifies it in error messages.
Image decode_image_memory(const uint8_t* data, size_t size, const std::string& name);

// The preprocessing recorded in the model. Throws Error if the model has none.
PreprocessSpec preprocess_spec(const Model& model);

// Writes one preprocessed sample of 3 * crop_height * crop_width floats to `out`, ordered per spec.layout.
// Throws Error for an invalid spec (non-positive sizes, negative resize_shorter, non-finite scale or mean,
// zero or non-finite std) or an inconsistent image.
void preprocess_image(const Image& image, const PreprocessSpec& spec, float* out);

// Decodes `path` and preprocesses it with the model's spec into sample `batch_index` of `input` (a Session
// input). Checks, before decoding, that `input` is [N, 3, crop_height, crop_width] (NCHW) or
// [N, crop_height, crop_width, 3] (NHWC) and that 0 <= batch_index < N. Throws Error naming the file.
void load_image_into(const Model& model, const std::string& path, Tensor input, int64_t batch_index);

}  // namespace octet
