// The shared MobileNet v1 0.25 converted FP32 and INT8, for the robustness tests (bad inputs, concurrency,
// load/run/unload cycles). Each test executable converts into a folder of its own under the build tree,
// since ctest runs them in parallel. The INT8 model is calibrated on 10 images only: these tests need its
// structure (Quantize, u8 x s8 Conv, Dequantize), not its accuracy, which test_int8_models checks.
#pragma once

#include <string>
#include <vector>

#include "converters/quant/convert.h"
#include "graph/model_format.h"
#include "octet/evaluation.h"

namespace octet::testing {

inline const std::string kShared = OCTET_SHARED_DIR;
inline const std::string kSampleImages = kShared + "/data/imagenet-samples";

// Converts the shared MobileNet into OCTET_BUILD_DIR/`folder`/mobilenet_{fp32,int8} and returns that path.
inline std::string convert_mobilenet(const std::string& folder, bool int8) {
  quant::ConvertOptions options;
  options.preprocess.preset = "tf";
  options.preprocess.labels_file = kShared + "/data/synset_words.txt";
  if (int8) {
    options.calibrate = kSampleImages;
    options.calib_count = 10;
  }
  const std::string out = std::string(OCTET_BUILD_DIR) + "/" + folder + (int8 ? "/mobilenet_int8" : "/mobilenet_fp32");
  write_model(quant::convert_onnx(kShared + "/models/mobilenet_v1_025/model.onnx", options, nullptr), out);
  return out;
}

// `count` of the shared images, spread over the classes, for inputs that differ from one another.
inline std::vector<std::string> sample_images(size_t count) {
  return list_images(kSampleImages, count, 1000 / count, 5);
}

}  // namespace octet::testing
