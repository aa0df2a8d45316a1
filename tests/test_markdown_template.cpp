// octet::tools::fill_template: the report's RESULTS.md is its template (converters/tools/report/
// RESULTS.template.md) with named placeholders filled in; a placeholder without a value, a value without a
// placeholder or a missing template must fail loudly, naming the template and the placeholder.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "converters/tools/markdown_template.h"
#include "octet/error.h"

using octet::tools::fill_template;
using octet::tools::fill_template_file;

namespace {

// The message of the octet::Error `f` throws ("" when it throws none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const octet::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("fill_template replaces each named placeholder, every occurrence, verbatim") {
  const std::string text = "# Results\n\nRun {{minutes}} minutes on {{cpu}}; {{minutes}} again.\n\n{{table}}\n";
  const std::string filled =
      fill_template(text, {{"minutes", "22.0"}, {"cpu", "AMD EPYC"}, {"table", "| a |\n|---|"}}, "t.md");
  CHECK(filled == "# Results\n\nRun 22.0 minutes on AMD EPYC; 22.0 again.\n\n| a |\n|---|\n");
}

TEST_CASE("fill_template leaves non-placeholder braces alone and does not rescan inserted values") {
  // "{{ x }}" and "{{a-b}}" are not names; a value that itself looks like a placeholder is inserted as text.
  const std::string filled = fill_template("set {{ x }} {{a-b}} {{v}} {{", {{"v", "{{cpu}}"}}, "t.md");
  CHECK(filled == "set {{ x }} {{a-b}} {{cpu}} {{");
  CHECK(fill_template("no placeholders", {}, "t.md") == "no placeholders");
}

TEST_CASE("fill_template: an unfilled placeholder or an unused value is an error naming template and placeholder") {
  const std::string missing = error_of([] {
    fill_template("a {{summary_table}} b {{cpu}}", {{"cpu", "x"}}, "RESULTS.template.md");
  });
  CHECK(missing.find("RESULTS.template.md") != std::string::npos);
  CHECK(missing.find("{{summary_table}}") != std::string::npos);
  const std::string unused = error_of([] {
    fill_template("a {{cpu}}", {{"cpu", "x"}, {"cores", "2"}}, "RESULTS.template.md");
  });
  CHECK(unused.find("RESULTS.template.md") != std::string::npos);
  CHECK(unused.find("{{cores}}") != std::string::npos);
}

TEST_CASE("fill_template_file reads the template from disk; a missing one is an error naming its path") {
  const std::filesystem::path dir = std::filesystem::path(OCTET_BUILD_DIR) / "test_markdown_template";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "small.template.md").string();
  {
    std::ofstream out(path, std::ios::binary);
    out << "## Summary\n\n{{table}}\n\nLatency {{ms}} ms.\n";
  }
  CHECK(fill_template_file(path, {{"table", "| m |\n|---|\n| 1 |"}, {"ms", "0.59"}}) ==
        "## Summary\n\n| m |\n|---|\n| 1 |\n\nLatency 0.59 ms.\n");
  const std::string unfilled = error_of([&] { fill_template_file(path, {{"table", "t"}}); });
  CHECK(unfilled.find(path) != std::string::npos);
  CHECK(unfilled.find("{{ms}}") != std::string::npos);
  const std::string absent = (dir / "absent.template.md").string();
  const std::string missing = error_of([&] { fill_template_file(absent, {}); });
  CHECK(missing.find(absent) != std::string::npos);
}

TEST_CASE("the report's template: every placeholder well-formed, and a Design measurements section") {
  // Every {{name}} of RESULTS.template.md must be filled: filling it with a value per name it contains must
  // leave no "{{" followed by a name, so a typo'd placeholder cannot survive into RESULTS.md.
  const std::string path = std::string(OCTET_SOURCE_DIR) + "/converters/tools/report/RESULTS.template.md";
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::map<std::string, std::string> values;
  for (size_t open = text.find("{{"); open != std::string::npos; open = text.find("{{", open + 2)) {
    const size_t close = text.find("}}", open);
    REQUIRE(close != std::string::npos);
    values[text.substr(open + 2, close - open - 2)] = "X";
  }
  CHECK(values.count("summary_table") == 1);
  CHECK(values.count("footprint_conclusions") == 1);
  const std::string filled = fill_template(text, values, path);
  CHECK(filled.find("{{") == std::string::npos);
  CHECK(filled.find("## Design measurements") != std::string::npos);
}
