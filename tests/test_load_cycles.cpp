// Load / run / unload cycles of the FP32 and INT8 MobileNet leave no memory behind. Two checks:
//   - the heap in use after each cycle stops growing once the first cycles have filled the caches that are
//     meant to persist (oneDNN's primitive cache, OpenMP's thread pool): this catches memory that is still
//     referenced but never released, which a leak checker does not report;
//   - in the sanitizer build (tests/run_all.sh), LeakSanitizer checks at exit that nothing allocated became
//     unreachable.
#include <doctest/doctest.h>

#include <malloc.h>

#include <algorithm>

#include "octet/image.h"
#include "tests/converted_mobilenet.h"

#if defined(__SANITIZE_ADDRESS__)
#define OCTET_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OCTET_ASAN 1
#endif
#endif
#ifdef OCTET_ASAN
// From <sanitizer/allocator_interface.h>, which clang ships and GCC does not (its libasan has the function).
extern "C" size_t __sanitizer_get_current_allocated_bytes();
#endif

namespace {

constexpr int kWarmUpCycles = 3;
constexpr int kCycles = 20;
// Far below what one leaked cycle would hold (the FP32 weights alone are 1.9 MB, an arena several MB).
constexpr size_t kAllowedGrowth = 256 * 1024;

// Bytes currently allocated on the heap: from ASan's allocator when it replaces malloc, else from glibc.
size_t heap_in_use() {
#ifdef OCTET_ASAN
  return __sanitizer_get_current_allocated_bytes();
#else
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;  // small blocks in the arenas + large mmap-ed ones
#endif
}

// One cycle: load, prepare a Session, classify an image, and release everything. Returns the top class.
size_t cycle(const std::string& folder, const std::string& image) {
  const auto model = octet::Model::load(folder);
  octet::Session session(model, {1, 1, false});
  octet::load_image_into(*model, image, session.input(0), 0);
  session.run();
  const octet::Tensor logits = session.output(0);
  return size_t(std::max_element(logits.data, logits.data + logits.elements()) - logits.data);
}

void check_cycles(const std::string& folder) {
  const std::string image = octet::testing::sample_images(1)[0];
  const size_t top = cycle(folder, image);
  for (int i = 1; i < kWarmUpCycles; ++i) cycle(folder, image);
  const size_t after_warm_up = heap_in_use();
  for (int i = kWarmUpCycles; i < kCycles; ++i) CHECK(cycle(folder, image) == top);
  const size_t after_all = heap_in_use();
  MESSAGE(folder << ": heap in use " << after_warm_up << " bytes after " << kWarmUpCycles << " cycles, " << after_all
                 << " after " << kCycles);
  CHECK(after_all <= after_warm_up + kAllowedGrowth);
}

}  // namespace

TEST_CASE("FP32 MobileNet: load/run/unload cycles leave the heap as they found it") {
  check_cycles(octet::testing::convert_mobilenet("test-load-cycles", false));
}

TEST_CASE("INT8 MobileNet: load/run/unload cycles leave the heap as they found it") {
  check_cycles(octet::testing::convert_mobilenet("test-load-cycles", true));
}
