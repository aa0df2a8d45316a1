// octet-test-runner PATH...: converts and runs every ONNX test folder (model.onnx + test_data_set_N) found at
// or directly under each PATH, compares with the reference outputs, prints one line per folder and a total.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "converters/analysis/conformance.h"
#include "octet/error.h"

static int usage() {
  std::fprintf(
      stderr,
      "usage: octet-test-runner [--rtol R] [--atol A] [--reference] [--threads N]\n"
      "                         [--int8 --calibrate DIR --preset P [--calib-count N] [--min-sqnr DB]] PATH...\n"
      "  PATH: a folder with model.onnx and test_data_set_N/, or a folder of such folders\n"
      "  --int8: quantize with the default policy, calibrated on DIR's images, and report the agreement\n"
      "  A model already quantized (QDQ or QOperator) runs with its own parameters and passes when its top-1\n"
      "  matches the reference and the SQNR is >= --min-sqnr (default 30 dB for such models)\n");
  return 2;
}

int main(int argc, char** argv) {
  octet::analysis::ConformanceOptions options;
  std::vector<std::string> paths;
  bool int8 = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (arg == "--rtol" || arg == "--atol" || arg == "--threads" || arg == "--calibrate" || arg == "--preset" ||
        arg == "--calib-count" || arg == "--min-sqnr") {
      const char* v = value();
      if (!v) return usage();
      if (arg == "--rtol")
        options.rtol = std::atof(v);
      else if (arg == "--atol")
        options.atol = std::atof(v);
      else if (arg == "--threads")
        options.threads = std::atoi(v);
      else if (arg == "--calibrate")
        options.calibrate = v;
      else if (arg == "--preset")
        options.preset = v;
      else if (arg == "--calib-count")
        options.calib_count = static_cast<size_t>(std::atol(v));
      else
        options.min_sqnr_db = options.quantized_min_sqnr_db = std::atof(v);
    } else if (arg == "--int8") {
      int8 = true;
    } else if (arg == "--reference") {
      options.reference_kernels = true;
    } else if (arg == "-h" || arg == "--help" || arg.rfind("--", 0) == 0) {
      return usage();
    } else {
      paths.push_back(arg);
    }
  }
  if (paths.empty() || int8 != !options.calibrate.empty()) return usage();  // --int8 and --calibrate go together
  int passed = 0, failed = 0;
  try {
    for (const std::string& path : paths) {
      for (const std::string& folder : octet::analysis::find_conformance_folders(path)) {
        octet::analysis::ConformanceResult r = octet::analysis::run_conformance_folder(folder, options);
        (r.passed ? passed : failed)++;
        if (r.passed && (int8 || r.quantized_model))
          std::printf("PASS %s  sets=%d int8 sqnr=%.2f dB top1_agreement=%.1f%%\n", folder.c_str(), r.data_sets,
                      r.sqnr_db, 100 * r.top1_agreement);
        else if (r.passed)
          std::printf("PASS %s  sets=%d max_abs=%.3g max_rel=%.3g\n", folder.c_str(), r.data_sets, r.max_abs_error,
                      r.max_rel_error);
        else
          std::printf("FAIL %s  %s\n", folder.c_str(), r.message.c_str());
        std::fflush(stdout);
      }
    }
  } catch (const std::exception& e) {  // octet::Error, and anything else (std::bad_alloc): a message, never a signal
    std::fprintf(stderr, "octet-test-runner: %s\n", e.what());
    return 1;
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
