// Running a tool binary (octet-convert, octet-test-runner) from a test: its exit code and what it printed.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace octet::testing {

struct ProcessResult {
  int exit_code = -1;  // -1: killed by a signal
  std::string out, err;
};

// The whole file as text ("" if it cannot be read).
std::string read_text(const std::filesystem::path& path);
// A shell word holding `arg` verbatim.
std::string shell_quote(const std::string& arg);
// Runs command[0] with the other words as arguments (each quoted for the shell), capturing stdout and
// stderr through files in `scratch` (created if missing).
ProcessResult run_process(const std::vector<std::string>& command, const std::filesystem::path& scratch);

}  // namespace octet::testing
