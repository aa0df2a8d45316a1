#include "converters/tools/markdown_template.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include "octet/error.h"

namespace octet::tools {

std::string fill_template(const std::string& text, const std::map<std::string, std::string>& values,
                          const std::string& template_name) {
  std::string out;
  std::set<std::string> used;
  size_t pos = 0;
  while (true) {
    const size_t open = text.find("{{", pos);
    if (open == std::string::npos) break;
    const size_t close = text.find("}}", open + 2);
    const std::string name = close == std::string::npos ? std::string() : text.substr(open + 2, close - open - 2);
    const bool is_name = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    });
    if (!is_name) {  // not a placeholder: braces in the prose stay as written
      out += text.substr(pos, open + 2 - pos);
      pos = open + 2;
      continue;
    }
    const auto value = values.find(name);
    if (value == values.end()) throw Error(template_name + ": placeholder {{" + name + "}} has no value");
    out += text.substr(pos, open - pos) + value->second;
    used.insert(name);
    pos = close + 2;
  }
  out += text.substr(pos);
  for (const auto& [name, value] : values)
    if (!used.count(name))
      throw Error(template_name + ": has no placeholder {{" + name + "}} for a value the report fills in");
  return out;
}

std::string fill_template_file(const std::string& path, const std::map<std::string, std::string>& values) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read the template " + path);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw Error("cannot read the template " + path);
  return fill_template(text.str(), values, path);
}

}  // namespace octet::tools
