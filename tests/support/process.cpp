#include "support/process.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace octet::testing {

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string shell_quote(const std::string& arg) {
  std::string quoted = "'";
  for (char c : arg) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

ProcessResult run_process(const std::vector<std::string>& command, const std::filesystem::path& scratch) {
  std::filesystem::create_directories(scratch);
  // Named by process: ctest runs the unit and models halves of one test program at once, in the same scratch.
  const std::string pid = std::to_string(getpid());
  const std::filesystem::path out = scratch / ("stdout." + pid + ".txt"), err = scratch / ("stderr." + pid + ".txt");
  std::string line;
  for (const std::string& arg : command) line += shell_quote(arg) + " ";
  const int status = std::system((line + ">" + shell_quote(out.string()) + " 2>" + shell_quote(err.string())).c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_text(out), read_text(err)};
}

}  // namespace octet::testing
