// libFuzzer target: image decoding, octet::decode_image_memory (libjpeg-turbo and stb_image behind it), then
// preprocessing of whatever decoded, so odd sizes and aspect ratios reach the resampler too. Every rejection
// must be an octet::Error; a decoded image must be inside the size limits and hold width * height * 3 bytes.
#include "octet/image.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  octet::fuzz::refuse_only_with_octet_error([&] {
    const octet::Image image = octet::decode_image_memory(data, size, "fuzz-input");
    if (image.width <= 0 || image.height <= 0 || image.width > octet::kMaxImageSide ||
        image.height > octet::kMaxImageSide || int64_t(image.width) * image.height > octet::kMaxImagePixels ||
        image.rgb.size() != size_t(image.width) * size_t(image.height) * 3)
      octet::fuzz::invariant_broken("decoded image " + std::to_string(image.width) + "x" +
                                    std::to_string(image.height) + " holding " + std::to_string(image.rgb.size()) +
                                    " bytes");
    // A small crop keeps each run fast whatever the image size; the first input byte picks the variant.
    octet::PreprocessSpec spec;
    spec.resize_shorter = 10;
    spec.crop_height = 8, spec.crop_width = 6;
    spec.resize = data[0] & 1 ? octet::Resize::nearest : octet::Resize::bilinear;
    spec.layout = data[0] & 2 ? octet::Layout::nhwc : octet::Layout::nchw;
    std::vector<float> sample(3 * 8 * 6);
    octet::preprocess_image(image, spec, sample.data());
  });
  return 0;
}
