// What the fuzz harnesses share: the layout of a model fuzz input, and the harnesses' one rule for failures.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "octet/error.h"
#include "tests/known_bugs.h"

namespace octet::fuzz {

// A model fuzz input is a model.json and a model.bin in one buffer: the JSON's length as 4 little-endian
// bytes, the JSON, then the binary. A length past the end takes the whole rest as JSON (no binary), so
// every input means something.
struct ModelInput {
  std::string json;
  std::vector<uint8_t> binary;
};

inline ModelInput split_model_input(const uint8_t* data, size_t size) {
  ModelInput input;
  if (size < 4) return input;
  size_t json_size = size_t(data[0]) | size_t(data[1]) << 8 | size_t(data[2]) << 16 | size_t(data[3]) << 24;
  data += 4, size -= 4;
  if (json_size > size) json_size = size;
  input.json.assign(reinterpret_cast<const char*>(data), json_size);
  input.binary.assign(data + json_size, data + size);
  return input;
}

inline std::vector<uint8_t> join_model_input(const std::string& json, const std::vector<uint8_t>& binary) {
  std::vector<uint8_t> out;
  for (int shift = 0; shift < 32; shift += 8) out.push_back(uint8_t(json.size() >> shift));
  out.insert(out.end(), json.begin(), json.end());
  out.insert(out.end(), binary.begin(), binary.end());
  return out;
}

// Runs `action` on one input. Bad input must be refused with octet::Error; any other exception escapes to
// libFuzzer, which reports it as a crash (uncaught exception -> abort) with the input that caused it, but
// for the bugs already reported (tests/known_bugs.h), which would otherwise hide every other finding.
template <typename Action>
void refuse_only_with_octet_error(Action action) {
  try {
    action();
  } catch (const octet::Error&) {
  } catch (const std::exception& e) {
    if (!octet::testing::is_known_bug(e)) throw;
  }
}

// An invariant of accepted input does not hold: report and abort, so libFuzzer saves the input.
[[noreturn]] inline void invariant_broken(const std::string& what) {
  std::fprintf(stderr, "octet fuzz: invariant broken: %s\n", what.c_str());
  std::abort();
}

}  // namespace octet::fuzz
